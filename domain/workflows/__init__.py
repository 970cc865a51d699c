"""The workflows context: versioned templates and the instances that run them as sagas."""
