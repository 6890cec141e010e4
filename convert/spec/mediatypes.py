"""Media types (oci.md §4): the OCI ones and their Docker schema 2 counterparts, in one place for
the readers, the writer and the validator."""

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = {
    "none": "application/vnd.oci.image.layer.v1.tar",
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
}

INDEX_TYPES = {OCI_INDEX, "application/vnd.docker.distribution.manifest.list.v2+json"}
MANIFEST_TYPES = {OCI_MANIFEST, "application/vnd.docker.distribution.manifest.v2+json"}
CONFIG_TYPES = {OCI_CONFIG, "application/vnd.docker.container.image.v1+json"}
LAYER_TYPES = {
    *OCI_LAYER.values(),
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar",
}

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"


def schema_of(media_type: str | None, oci_kind: str) -> str:
    """The schema a manifest or index is checked against: Docker's media types have their
    own (an OCI layout may point at them: containerd's exports do), anything else OCI's."""
    return {DOCKER_MANIFEST: "docker-manifest",
            DOCKER_MANIFEST_LIST: "docker-manifest-list"}.get(media_type, oci_kind)
