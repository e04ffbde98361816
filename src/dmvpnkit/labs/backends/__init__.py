"""Lab backends: netns (ours, the embedded default), mininet, clab (labs.backend)."""
