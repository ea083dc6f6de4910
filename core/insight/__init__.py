"""See why the FCN predicts what it does: skip streams, receptive fields, the fc layers as
convolutions, and the uncertainty that tells the user where to correct (Qt-free)."""
