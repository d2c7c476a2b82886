"""A small demo shop (its own origin) that runs the real clarity-js tracker and supportlens.js."""
