"""convnet: a from-scratch NumPy deep-learning framework."""
