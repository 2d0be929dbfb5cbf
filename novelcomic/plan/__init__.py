"""Plan stage: chapter text → characters, props, locations and storyboards."""
