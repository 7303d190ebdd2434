"""The v2 gRPC codec: ``ModelInferRequest`` → the columns REST's v2 codec produces, and output
tensors → ``ModelInferResponse``.

A tensor's values come from ``raw_input_contents`` (what tritonclient and perf_analyzer send:
little-endian bytes, BYTES as length-prefixed strings — decoded by codecs/v2.py's
``decode_binary``, the REST binary extension's own decoder) or from its typed ``contents``.
Answers carry ``raw_output_contents``, as Triton's do. Shapes, datatypes, sizes and one row count
for all inputs are checked here, as for REST, so validation only judges values.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tabserve.serving.codecs.v2 import (
    DATATYPES,
    MAX_ID_LENGTH,
    DecodedRequest,
    OutputTensor,
    RequestedOutput,
    V2ProtocolError,
    _binary_of,
    _rows_of,
    _text,
    decode_binary,
)

# The typed ``contents`` field that carries each datatype.
_CONTENTS = {
    "BOOL": "bool_contents", "INT8": "int_contents", "INT16": "int_contents",
    "INT32": "int_contents", "INT64": "int64_contents", "UINT8": "uint_contents",
    "UINT16": "uint_contents", "UINT32": "uint_contents", "UINT64": "uint64_contents",
    "FP32": "fp32_contents", "FP64": "fp64_contents", "BYTES": "bytes_contents",
}  # fmt: skip


def _parameter(value: Any) -> Any:
    """An InferParameter's value: the field that is set (proto3 leaves the others zero)."""
    for field in ("string_param", "int64_param", "double_param", "uint64_param", "bool_param"):
        chosen = getattr(value, field)
        if chosen:
            return chosen
    return False


def decode_request(request: Any) -> DecodedRequest:
    if not request.inputs:
        raise V2ProtocolError("inference request needs a non-empty 'inputs' list")
    raw = list(request.raw_input_contents)
    if raw and len(raw) != len(request.inputs):
        raise V2ProtocolError(
            f"raw_input_contents has {len(raw)} entries for {len(request.inputs)} inputs"
        )
    columns: dict[str, Any] = {}
    n_rows: int | None = None
    for i, tensor in enumerate(request.inputs):
        name, datatype = tensor.name, tensor.datatype
        if not name:
            raise V2ProtocolError("each input needs a name")
        if datatype not in DATATYPES:
            raise V2ProtocolError(
                f"input '{name}' has datatype {datatype!r}; expected one of {sorted(DATATYPES)}"
            )
        rows, count = _rows_of(name, list(tensor.shape))
        if raw:
            values = decode_binary(name, datatype, raw[i], count)
        else:
            contents = list(getattr(tensor.contents, _CONTENTS[datatype]))
            if len(contents) != count:
                raise V2ProtocolError(
                    f"input '{name}' holds {len(contents)} values but its shape says {count}"
                )
            if datatype == "BYTES":
                values = [_text(name, v) for v in contents]
            elif datatype == "BOOL":
                values = np.asarray(contents, dtype=bool)
            elif datatype.startswith(("INT", "UINT")):
                values = np.asarray(contents, dtype=np.int64)
            else:
                values = np.asarray(contents, dtype=np.float64)
        if name in columns:
            raise V2ProtocolError(f"input '{name}' appears more than once")
        if n_rows is not None and rows != n_rows:
            raise V2ProtocolError(
                f"input '{name}' has {rows} rows but earlier inputs have {n_rows}; "
                "every input needs the same first dimension"
            )
        n_rows = rows
        columns[name] = values
    request_id = request.id or None
    if request_id is not None and (len(request_id) > MAX_ID_LENGTH or "\x00" in request_id):
        raise V2ProtocolError(f"the request 'id' must be at most {MAX_ID_LENGTH} characters")
    outputs = [RequestedOutput(o.name, True) for o in request.outputs] or None
    parameters = {k: _parameter(v) for k, v in request.parameters.items()}
    return DecodedRequest(columns, n_rows or 0, request_id, outputs, True, parameters)


def encode_response(
    response_class: Any,
    *,
    model_name: str,
    model_version: str,
    request_id: str | None,
    outputs: list[OutputTensor],
    warnings: str | None = None,
) -> Any:
    response = response_class(model_name=model_name, model_version=model_version)
    if request_id:
        response.id = request_id
    if warnings:
        response.parameters["warnings"].string_param = warnings
    for tensor in outputs:
        response.outputs.add(
            name=tensor.name, datatype=tensor.datatype, shape=list(tensor.array.shape)
        )
        response.raw_output_contents.append(_binary_of(tensor))
    return response
