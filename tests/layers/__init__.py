"""fastnn.layers: one module per layer family."""
