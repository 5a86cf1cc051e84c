"""The kernel floor (fastnn/_kernels.pyx, seen through fastnn.kernels) against its NumPy
twin fastnn.ops: one module per kernel family."""
