"""Model files: FCN Studio checkpoints (safetensors with metadata), their validation, the
published Caffe and pytorch-fcn nets and their conversion, downloads, and ONNX export."""
