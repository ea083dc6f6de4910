"""FCN Studio's bundled data, a package so that it ships in the wheel.

``models/default.safetensors`` (the default checkpoint), ``samples/`` (images, masks and
class names) and ``icons/``. Nothing here is code: find a file with
:func:`core.paths.resource_path`, which works the same from a checkout, an editable install
and an installed wheel.
"""
