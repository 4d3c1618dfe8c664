"""convnet: a from-scratch NumPy deep-learning framework."""

from convnet._threads import set_num_threads as set_num_threads  # explicit re-export
