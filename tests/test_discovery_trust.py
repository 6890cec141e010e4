"""rkt's keystore and gpgv verification, with keys made by real gpg (no server needed)."""

from __future__ import annotations

import base64

import pytest

from appc_server import gpg_with_keys
from convert.discovery import openpgp, trust
from convert.discovery.verify import verify
from convert.errors import AciociError, FormatError, SignatureError, SourceUnreadableError


@pytest.fixture(scope="module")
def gpg(tmp_path_factory):
    g = gpg_with_keys(tmp_path_factory.mktemp("gnupg") / "home")
    yield g
    g.close()


def test_fingerprint_and_dearmor_agree_with_gpg(gpg):
    armored = gpg.export(gpg.good)
    binary = gpg.export(gpg.good, armor=False)
    assert openpgp.dearmor(armored) == binary
    fpr, packets = openpgp.first_key(armored)
    assert fpr == gpg.good and packets == binary
    assert openpgp.first_key(binary)[0] == gpg.good


def test_only_the_first_key_of_a_file_is_used(gpg):
    both = gpg.export(gpg.good, armor=False) + gpg.export(gpg.other, armor=False)
    fpr, packets = openpgp.first_key(both)
    assert fpr == gpg.good and packets == gpg.export(gpg.good, armor=False)


@pytest.mark.parametrize("damage, why", [
    (lambda a: a[:a.index(b"-----END")], "no END line"),
    (lambda a: b"hello", "neither an armored nor a binary"),
    (lambda a: b"", "neither an armored nor a binary"),
    (lambda a: b"\x99\x00", "truncated"),
    (lambda a: b"\xb4\x03abc", "not a public key"),  # a user ID packet first
])
def test_broken_key_files_are_errors(gpg, damage, why):
    with pytest.raises(FormatError, match=why):
        openpgp.first_key(damage(gpg.export(gpg.good)))


def test_armor_checksum_is_checked(gpg):
    lines = gpg.export(gpg.good).decode().splitlines()
    i = next(n for n, line in enumerate(lines) if line.startswith("=") and len(line) == 5)
    crc = base64.b64decode(lines[i][1:])
    lines[i] = "=" + base64.b64encode(bytes([crc[0] ^ 1]) + crc[1:]).decode()
    with pytest.raises(FormatError, match="checksum"):
        openpgp.first_key("\n".join(lines).encode())


def test_secret_keys_are_refused(gpg):
    secret = gpg.run("--export-secret-keys", gpg.good).stdout
    with pytest.raises(FormatError, match="secret key"):
        openpgp.first_key(secret)


def test_prefix_trust_is_by_path_component(gpg, tmp_path):
    ks = tmp_path / "keys"
    gpg.trust(ks, gpg.good, "example.com/app")
    gpg.trust(ks, gpg.other, None, armor=False)  # root.d, binary
    fprs = lambda name: [k.fingerprint for k in trust.keys_for(name, (str(ks),))]  # noqa: E731
    assert fprs("example.com/app") == [gpg.other, gpg.good]
    assert fprs("example.com/app/x") == [gpg.other, gpg.good]
    assert fprs("example.com/application") == [gpg.other]  # rkt's string prefix would say yes
    assert fprs("example.com") == [gpg.other]
    scoped = trust.keys_for("example.com/app/x", (str(ks),))[1]
    assert scoped.scope == "example.com/app"
    assert trust.scopes_of(gpg.good, (str(ks),)) == ["example.com/app"]
    assert trust.scopes_of(gpg.good[-16:], (str(ks),)) == ["example.com/app"]  # a key ID


def test_etc_overrides_and_disables_usr_lib(gpg, tmp_path):
    etc, usr = tmp_path / "etc", tmp_path / "usr"
    gpg.trust(usr, gpg.good, "example.com")
    gpg.trust(usr, gpg.other, "example.com")
    dirs = (str(etc), str(usr))
    assert {k.fingerprint for k in trust.keys_for("example.com/a", dirs)} == \
        {gpg.good, gpg.other}
    (etc / "prefix.d" / "example.com").mkdir(parents=True)
    (etc / "prefix.d" / "example.com" / gpg.good).write_bytes(b"")  # disables the shipped key
    assert [k.fingerprint for k in trust.keys_for("example.com/a", dirs)] == [gpg.other]
    # an empty file elsewhere (another prefix) does not
    (etc / "prefix.d" / "example.org").mkdir(parents=True)
    (etc / "prefix.d" / "example.org" / gpg.other).write_bytes(b"")
    assert [k.fingerprint for k in trust.keys_for("example.com/a", dirs)] == [gpg.other]


def test_a_key_file_must_be_named_after_its_fingerprint(gpg, tmp_path):
    ks = tmp_path / "keys"
    path = gpg.trust(ks, gpg.good, "example.com")
    path.rename(path.with_name(gpg.other))
    with pytest.raises(SourceUnreadableError, match="not named after") as err:
        trust.keys_for("example.com/app", (str(ks),))
    assert err.value.exit_code == 2


def test_missing_keystores_trust_nothing(tmp_path):
    assert trust.keys_for("example.com/app", (str(tmp_path / "none"),)) == []


# --- gpgv ---

@pytest.fixture()
def signed(gpg, tmp_path):
    data = tmp_path / "app.aci"
    data.write_bytes(b"pretend this is an ACI\n" * 100)

    def sig(fpr, **kw):
        p = tmp_path / "app.aci.asc"
        p.write_bytes(gpg.sign(fpr, data.read_bytes(), **kw))
        return p
    return data, sig


def _verify(data, sig, ks, name="example.com/app"):
    work = data.parent / "work"
    work.mkdir(exist_ok=True)
    return verify(str(data), str(sig), name=name, image=name,
                  keys=trust.keys_for(name, (str(ks),)), workdir=str(work),
                  trust_dirs=(str(ks),))


def test_good_signature_by_a_trusted_key(gpg, signed, tmp_path):
    data, sig = signed
    ks = tmp_path / "keys"
    key_file = gpg.trust(ks, gpg.good, "example.com/app")
    got = _verify(data, sig(gpg.good), ks)
    assert got.signed_by == gpg.good and got.key_path == str(key_file)
    assert got.scope == "example.com/app"


def test_tampered_data_is_a_bad_signature(gpg, signed, tmp_path):
    data, sig = signed
    ks = tmp_path / "keys"
    gpg.trust(ks, gpg.good, "example.com")
    s = sig(gpg.good)
    data.write_bytes(data.read_bytes() + b"x")
    with pytest.raises(SignatureError, match=f"bad signature by key {gpg.good}: ") as err:
        _verify(data, s, ks)
    assert err.value.exit_code == 1
    assert str(err.value).startswith("example.com/app: bad signature")


def test_unknown_key_is_named_with_its_fingerprint(gpg, signed, tmp_path):
    data, sig = signed
    ks = tmp_path / "keys"
    gpg.trust(ks, gpg.good, "example.com")
    with pytest.raises(SignatureError) as err:
        _verify(data, sig(gpg.other), ks)
    assert str(err.value) == (f"example.com/app: signed by key {gpg.other}, which is not "
                              "trusted for example.com/app")


def test_key_trusted_for_another_prefix_only(gpg, signed, tmp_path):
    data, sig = signed
    ks = tmp_path / "keys"
    gpg.trust(ks, gpg.other, "example.com/other")
    with pytest.raises(SignatureError, match=f"key {gpg.other}, which is not trusted for "
                       r"example.com/app \(it is trusted for example.com/other only\)"):
        _verify(data, sig(gpg.other), ks)


def test_expired_key(gpg, signed, tmp_path):
    data, sig = signed
    ks = tmp_path / "keys"
    gpg.trust(ks, gpg.old, "example.com/app")
    s = sig(gpg.old, faked_time="20200101T120000")
    with pytest.raises(SignatureError, match=f"signed by key {gpg.old}, which has expired"):
        _verify(data, s, ks)


def test_not_a_signature(gpg, signed, tmp_path):
    data, _ = signed
    ks = tmp_path / "keys"
    gpg.trust(ks, gpg.good, "example.com")
    junk = tmp_path / "junk.asc"
    junk.write_bytes(b"-----BEGIN PGP SIGNATURE-----\n\nAAAA\n-----END PGP SIGNATURE-----\n")
    with pytest.raises(SignatureError, match="no valid signature"):
        _verify(data, junk, ks)


def test_text_mode_signatures_are_refused(gpg, signed, tmp_path):
    data, _ = signed
    ks = tmp_path / "keys"
    gpg.trust(ks, gpg.good, "example.com")
    out = tmp_path / "text.asc"
    gpg.run("--local-user", gpg.good, "--armor", "--textmode", "--detach-sign", "--output",
            out, data)
    with pytest.raises(AciociError, match="class 01, not over a binary document"):
        _verify(data, out, ks)
