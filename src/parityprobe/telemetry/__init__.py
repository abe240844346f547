"""OpenTelemetry for parityprobe: traces and metrics of runs, findings and the daemon's schedule.

``settings`` is the environments file's ``telemetry`` section; ``providers`` builds a :class:`Telemetry`
(a tracer provider and a meter provider of its own, never the global ones) from it; ``listener`` turns
what the runner tells into spans and metric points, every value through the redactor.

The OpenTelemetry exporters are imported only when a section asks for them (``pip install
'parityprobe[telemetry]'``), so the command line starts as fast without them.
"""
