"""The built-in scenario library (YAML), shipped as package data so `parityprobe demo` finds it."""
