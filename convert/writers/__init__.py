"""Writers: one per target format, each consuming the neutral graph (`convert.graph`)."""
