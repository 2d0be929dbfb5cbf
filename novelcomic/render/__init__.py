"""Design and render stages: character reference sheets and shot images."""
