"""Built-in image-to-video backends (registered in novelcomic.backends_builtin)."""
