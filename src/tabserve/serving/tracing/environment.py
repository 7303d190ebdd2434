"""OpenTelemetry's own environment variables → the sampler, the exporter and the resource.

OTEL_TRACES_SAMPLER (+ _ARG), OTEL_TRACES_EXPORTER, OTEL_EXPORTER_OTLP_* and OTEL_SERVICE_NAME /
OTEL_RESOURCE_ATTRIBUTES, read as the SDK reads them, except that a value tabserve cannot use
(an unknown sampler, a ratio outside 0..1, the gRPC protocol, an endpoint that is not a URL) is
the user's mistake, said in one line before the server starts (``check_environment``) rather
than a warning the SDK logs and ignores. The model call's sampler (``ModelCallSampler``) is here
too: it decides from the links, so a kept request's trace always leads to its model call.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.resources import (
    SERVICE_NAME,
    SERVICE_VERSION,
    OTELResourceDetector,
    Resource,
)
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind

import tabserve
from tabserve.errors import UserError

MODEL_CALL = "infer"  # the name of the model call's span (the sampler keys on it)
SAMPLERS = (
    "always_on", "always_off", "traceidratio",
    "parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio",
)  # fmt: skip
EXPORTERS = ("otlp", "console", "none")


def sampler_from_environment() -> Sampler:
    """The sampler OTEL_TRACES_SAMPLER (+ _ARG) names; a value OpenTelemetry does not know
    is the user's mistake: one line saying which values there are."""
    name = os.environ.get("OTEL_TRACES_SAMPLER", "parentbased_always_on").strip().lower()
    if name not in SAMPLERS:
        raise UserError(
            f"OTEL_TRACES_SAMPLER={name!r} is not a sampler tabserve knows: use one of "
            f"{', '.join(SAMPLERS)}"
        )
    ratio = 1.0
    arg = os.environ.get("OTEL_TRACES_SAMPLER_ARG", "").strip()
    if name.endswith("traceidratio") and arg:
        try:
            ratio = float(arg)
        except ValueError:
            ratio = -1.0
        if not 0.0 <= ratio <= 1.0:
            raise UserError(
                f"OTEL_TRACES_SAMPLER_ARG={arg!r}: give the share of traces to keep, 0..1"
            )
    root = {
        "always_on": ALWAYS_ON,
        "always_off": ALWAYS_OFF,
        "traceidratio": TraceIdRatioBased(ratio),
    }[name.removeprefix("parentbased_")]
    return ParentBased(root) if name.startswith("parentbased_") else root


def exporter_from_environment() -> SpanExporter | None:
    kind = os.environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower()
    if kind not in EXPORTERS:
        raise UserError(
            f"OTEL_TRACES_EXPORTER={kind!r}: tabserve exports with otlp (OTLP over HTTP), "
            "console or none"
        )
    if kind == "none":
        return None
    if kind == "console":
        return ConsoleSpanExporter()
    for variable in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        protocol = os.environ.get(variable, "").strip()
        if protocol and protocol != "http/protobuf":
            raise UserError(
                f"{variable}={protocol!r}: tabserve exports OTLP over HTTP (http/protobuf); "
                "point OTEL_EXPORTER_OTLP_ENDPOINT at the collector's HTTP port (4318)"
            )
    for variable in ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        endpoint = os.environ.get(variable, "").strip()
        if endpoint and not endpoint.startswith(("http://", "https://")):
            raise UserError(
                f"{variable} must be an http:// or https:// URL, e.g. http://127.0.0.1:4318"
            )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def check_environment() -> None:
    """Raise UserError for an OTEL_* setting tabserve cannot use (before the server starts)."""
    sampler_from_environment()
    exporter = exporter_from_environment()
    if exporter is not None:
        exporter.shutdown()


class ModelCallSampler(Sampler):
    """The configured sampler, except for a model call: kept when a request it serves is."""

    def __init__(self, inner: Sampler) -> None:
        self.inner = inner

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Any = None,
        links: Sequence[Link] | None = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        if name == MODEL_CALL and links:
            sampled = any(link.context.trace_flags.sampled for link in links)
            return SamplingResult(Decision.RECORD_AND_SAMPLE if sampled else Decision.DROP,
                                  attributes)  # fmt: skip
        return self.inner.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"ModelCallSampler{{{self.inner.get_description()}}}"


def resource() -> Resource:
    detected = OTELResourceDetector().detect().attributes
    own: dict[str, Any] = {}
    if not detected.get(SERVICE_NAME):
        own[SERVICE_NAME] = "tabserve"
    if not detected.get(SERVICE_VERSION):
        own[SERVICE_VERSION] = tabserve.__version__
    return Resource.create(own)
