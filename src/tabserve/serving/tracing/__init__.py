"""OpenTelemetry traces of requests, when the server runs with ``--tracing`` (the otel extra).

This package is the only code that imports OpenTelemetry, and only ``create_app`` (and the
``--tracing`` check of ``tabserve serve``) imports it, only when tracing is on: a server
without ``--tracing`` never loads a line of OpenTelemetry, and its request path runs exactly
the code it runs without this package (docs/adr/0016). Tracing
is woven in by replacing objects when the app is built, not by checks on the request path:
the app's front and each model route's handler are wrapped, the data plane is a subclass
(``TracedDataPlane``), its batcher too (``TracedBatcher``), its prediction-log sink a wrapper.

Spans per request; the parent is the client's W3C ``traceparent`` (+ ``tracestate``; any
propagator OTEL_PROPAGATORS names), else the request starts a trace::

    SERVER "POST /predict"   the whole request: http.*, tabserve.request_id (the server's own
      │                      id, the prediction log's key), tabserve.model.name/.version
      ├ decode       reading the body and the protocol's codec (handler start → validation)
      ├ validate     FeatureSpec validation; ERROR with the fields and reasons when it fails
      ├ queue_wait   waiting in the batcher for the model call; linked to that call
      ├ log_enqueue  handing the prediction log its line
      └ encode       the prediction → the protocol's answer (end of predict → handler end)

and one span per model call, in a trace of its own (``infer``: rows, requests, runtime),
linked to the server span of every request whose rows it ran — a call serves many requests of
many traces, and a span has one parent. It is sampled when any request it serves is (a link-
aware sampler around the configured one), so a kept trace's links always lead somewhere.

Status: a step that raised is ERROR (the message, never the values a client sent); the server
span is ERROR for a 5xx, and carries the status code for every answer (OpenTelemetry's HTTP
conventions leave a 4xx server span unset: the client's mistake is not the server's error).
gRPC (``inference.GRPCInferenceService/ModelInfer``) gets the same spans from its metadata.

Configuration is OpenTelemetry's own environment: OTEL_EXPORTER_OTLP_ENDPOINT (or
_TRACES_ENDPOINT), _HEADERS, _TIMEOUT, _COMPRESSION; OTEL_TRACES_SAMPLER and _ARG;
OTEL_SERVICE_NAME (default ``tabserve``) and OTEL_RESOURCE_ATTRIBUTES; OTEL_BSP_* for the batch
processor; OTEL_TRACES_EXPORTER ``otlp`` (OTLP/HTTP protobuf), ``console`` or ``none``.
A sampled-out request costs one sampler call and a non-recording span, nothing else.

The package, one concern a module: ``environment`` (the OTEL_* variables → sampler, exporter,
resource), ``spans`` (the tracer, the server spans of the HTTP and gRPC fronts, the step spans
and the model call's span), ``dataplane`` (the traced data plane, batcher and log sink).
"""

from tabserve.serving.tracing.environment import check_environment
from tabserve.serving.tracing.spans import Tracing

__all__ = ["Tracing", "check_environment"]
