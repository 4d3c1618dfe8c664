"""Speed and memory benchmarks against TensorFlow and PyTorch (see benchmarks/README.md)."""
