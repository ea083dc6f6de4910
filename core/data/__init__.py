"""Data: image and mask I/O, the VOC palette, dataset layouts, augmentation, generated scenes."""
