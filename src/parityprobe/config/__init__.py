"""Input: the environments file and scenario files, parsed, validated and located (file, line, field)."""
