"""Open Inference Protocol v2 codec: request bodies → feature columns, predictions → bodies.

Covers the JSON tensor encoding of the kserve spec and Triton's binary tensor data extension
(``Inference-Header-Content-Length`` + ``binary_data_size``), both ways. It knows no HTTP framework
and no model: rest/v2.py hands it bytes and headers, it hands back plain columns or bytes.
The protocol is checked here — shapes, datatypes, sizes, UTF-8, nesting, one row count for
all inputs — so validation only judges values.

Decoded columns are lists of plain Python values (JSON tensors, BYTES) or 1-D numpy arrays
(binary numeric tensors), which the one FeatureSpec validation judges for both protocols alike.
NaN in a floating tensor means "missing" (the ONNX contract's convention); JSON ``null`` is
accepted as missing too, since JSON has no NaN.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from tabserve.serving.errors import BadRequest

HEADER_LENGTH = "inference-header-content-length"

# v2 datatype → numpy dtype of its little-endian binary form (BYTES has no fixed width).
NUMPY_DTYPES: dict[str, str] = {
    "BOOL": "|b1",
    "UINT8": "<u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
    "INT8": "<i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "FP16": "<f2",
    "FP32": "<f4",
    "FP64": "<f8",
}
DATATYPES = frozenset([*NUMPY_DTYPES, "BYTES"])
_LENGTH_PREFIX = struct.Struct("<I")
# A request's own "id" is echoed back and kept in the prediction log beside the server's key.
MAX_ID_LENGTH = 200


class V2ProtocolError(BadRequest):
    """A request that breaks the protocol itself (shape, datatype, sizes): the client's error."""


@dataclass
class RequestedOutput:
    name: str
    binary: bool


@dataclass
class DecodedRequest:
    """What v2.py needs from an inference request: columns, row count and response options."""

    columns: dict[str, list[Any] | np.ndarray]
    n_rows: int
    id: str | None = None
    # None: every output the model has; otherwise exactly these, in this order.
    outputs: list[RequestedOutput] | None = None
    binary_output: bool = False
    parameters: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------------------------


def split_body(body: bytes, header_length: str | None) -> tuple[dict[str, Any], bytes]:
    """Split a body into its JSON header and the binary tensor data that follows it."""
    if header_length is None:
        json_part, binary = body, b""
    else:
        try:
            size = int(header_length)
        except ValueError:
            raise V2ProtocolError(
                f"Inference-Header-Content-Length must be an integer, got {header_length!r}"
            ) from None
        if not 0 < size <= len(body):
            raise V2ProtocolError(
                f"Inference-Header-Content-Length {size} does not fit a body of {len(body)} bytes"
            )
        json_part, binary = body[:size], body[size:]
    try:
        header = orjson.loads(json_part)
    except orjson.JSONDecodeError as exc:
        header = _loads_with_nan(json_part, exc)
    if not isinstance(header, dict):
        raise V2ProtocolError("inference request must be a JSON object")
    return header, binary


def _loads_with_nan(json_part: bytes, first_error: Exception) -> Any:
    """tritonclient's JSON mode writes missing floats as bare ``NaN`` (Python's json.dumps);
    strict JSON parsers refuse that token, so retry with the standard library, which reads it."""
    if b"NaN" not in json_part and b"Infinity" not in json_part:
        raise V2ProtocolError(f"request body is not valid JSON: {first_error}") from None
    try:
        return json.loads(json_part)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise V2ProtocolError(f"request body is not valid JSON: {first_error}") from None


def decode_request(body: bytes, header_length: str | None) -> DecodedRequest:
    """Parse a v2 inference request (JSON, or JSON + binary tensors) into columns."""
    header, binary = split_body(body, header_length)
    inputs = header.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise V2ProtocolError("inference request needs a non-empty 'inputs' list")
    parameters = _parameters(header.get("parameters"), "request")
    columns: dict[str, list[Any] | np.ndarray] = {}
    n_rows: int | None = None
    offset = 0
    for tensor in inputs:
        name, values, rows, used = _decode_input(tensor, binary, offset)
        offset += used
        if name in columns:
            raise V2ProtocolError(f"input '{name}' appears more than once")
        if n_rows is not None and rows != n_rows:
            raise V2ProtocolError(
                f"input '{name}' has {rows} rows but earlier inputs have {n_rows}; "
                "every input needs the same first dimension"
            )
        n_rows = rows
        columns[name] = values
    if offset != len(binary):
        raise V2ProtocolError(
            f"binary data is {len(binary)} bytes but inputs' binary_data_size add up to {offset}"
        )
    request_id = header.get("id")
    if request_id is not None:
        request_id = str(request_id)
        if len(request_id) > MAX_ID_LENGTH or "\x00" in request_id:
            raise V2ProtocolError(f"the request 'id' must be at most {MAX_ID_LENGTH} characters")
    return DecodedRequest(
        columns=columns,
        n_rows=n_rows or 0,
        id=request_id,
        outputs=_requested_outputs(header.get("outputs")),
        binary_output=bool(parameters.get("binary_data_output", False)),
        parameters=parameters,
    )


def _parameters(raw: Any, where: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise V2ProtocolError(f"'parameters' of the {where} must be a JSON object")
    return raw


def _requested_outputs(raw: Any) -> list[RequestedOutput] | None:
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise V2ProtocolError("'outputs' must be a list")
    wanted = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise V2ProtocolError("each requested output needs a 'name'")
        params = _parameters(item.get("parameters"), f"output '{item['name']}'")
        wanted.append(RequestedOutput(item["name"], bool(params.get("binary_data", False))))
    return wanted


def _rows_of(name: str, shape: Any) -> tuple[int, int]:
    """(rows, elements) of a tabular input: shape [N] or [N, 1] — one value per row."""
    if (
        not isinstance(shape, list)
        or not 1 <= len(shape) <= 2
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):
        raise V2ProtocolError(
            f"input '{name}' has shape {shape!r}; expected [N] or [N, 1] with N >= 0"
        )
    if len(shape) == 2 and shape[1] != 1:
        raise V2ProtocolError(
            f"input '{name}' has shape {shape}; each feature is one value per row: [N] or [N, 1]"
        )
    return shape[0], shape[0]


def _decode_input(
    tensor: Any, binary: bytes, offset: int
) -> tuple[str, list[Any] | np.ndarray, int, int]:
    """Decode one input tensor; returns (name, values, rows, binary bytes consumed)."""
    if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
        raise V2ProtocolError("each input needs a string 'name'")
    name = tensor["name"]
    datatype = tensor.get("datatype")
    if not isinstance(datatype, str) or datatype not in DATATYPES:
        raise V2ProtocolError(
            f"input '{name}' has datatype {datatype!r}; expected one of {sorted(DATATYPES)}"
        )
    rows, count = _rows_of(name, tensor.get("shape"))
    params = _parameters(tensor.get("parameters"), f"input '{name}'")
    size = params.get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or size < 0 or offset + size > len(binary):
            raise V2ProtocolError(
                f"input '{name}' binary_data_size {size!r} runs past the end of the binary data"
            )
        values = decode_binary(name, datatype, binary[offset : offset + size], count)
        return name, values, rows, size
    if "data" not in tensor:
        raise V2ProtocolError(f"input '{name}' has neither 'data' nor binary_data_size")
    return name, decode_json_data(name, datatype, tensor["data"], count), rows, 0


def decode_binary(name: str, datatype: str, raw: bytes, count: int) -> list[Any] | np.ndarray:
    """Little-endian row-major tensor bytes → str list (BYTES) or a 1-D numpy array.

    Arrays go to validation as they are: its vectorised path checks numeric columns without a
    Python loop, and reads NaN as a missing value.
    """
    if datatype == "BYTES":
        strings = deserialize_bytes(name, raw)
        if len(strings) != count:
            raise V2ProtocolError(
                f"input '{name}' holds {len(strings)} strings but its shape says {count}"
            )
        return [_text(name, s) for s in strings]
    dtype = np.dtype(NUMPY_DTYPES[datatype])
    if len(raw) != count * dtype.itemsize:
        raise V2ProtocolError(
            f"input '{name}' has {len(raw)} bytes of {datatype}; its shape needs "
            f"{count * dtype.itemsize}"
        )
    array = np.frombuffer(raw, dtype=dtype)
    return array.astype(np.float64) if datatype == "FP16" else array


def deserialize_bytes(name: str, raw: bytes) -> list[bytes]:
    """Split a BYTES tensor: each element is a 4-byte little-endian length, then its bytes."""
    out: list[bytes] = []
    pos, end = 0, len(raw)
    while pos < end:
        if pos + 4 > end:
            raise V2ProtocolError(f"input '{name}' BYTES data ends inside a length prefix")
        (length,) = _LENGTH_PREFIX.unpack_from(raw, pos)
        pos += 4
        if pos + length > end:
            raise V2ProtocolError(f"input '{name}' BYTES element runs past its data")
        out.append(raw[pos : pos + length])
        pos += length
    return out


def serialize_bytes(values: list[bytes]) -> bytes:
    """The inverse of deserialize_bytes."""
    return b"".join(_LENGTH_PREFIX.pack(len(v)) + v for v in values)


def _text(name: str, value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise V2ProtocolError(f"input '{name}' holds a BYTES element that is not UTF-8") from None


def _flatten(name: str, data: Any) -> list[Any]:
    """JSON tensor data, flat or nested row-major; a tabular input is at most 2-D ([N, 1]).

    Iterative and bounded at two levels: a crafted body nested a thousand deep is a 400, not
    a RecursionError.
    """
    if not isinstance(data, list):
        return [data]
    flat: list[Any] = []
    for item in data:
        if type(item) is not list:
            flat.append(item)
            continue
        for inner in item:
            if type(inner) is list:
                raise V2ProtocolError(
                    f"input '{name}' data is nested deeper than its shape [N] or [N, 1] allows"
                )
            flat.append(inner)
    return flat


def decode_json_data(name: str, datatype: str, data: Any, count: int) -> list[Any]:
    """Check JSON tensor data against its datatype; values keep their JSON types."""
    values = _flatten(name, data)
    if len(values) != count:
        raise V2ProtocolError(
            f"input '{name}' holds {len(values)} values but its shape says {count}"
        )
    if datatype == "BYTES":
        expected: tuple[type, ...] = (str,)
    elif datatype == "BOOL":
        expected = (bool,)
    elif datatype.startswith(("INT", "UINT")):
        expected = (int,)
    else:
        expected = (int, float)
    for i, v in enumerate(values):
        # null (and NaN, see _loads_with_nan) is a missing value; nullability is validation's call.
        if v is None:
            continue
        if type(v) is float and v != v:
            values[i] = None
            continue
        if not isinstance(v, expected) or (datatype != "BOOL" and isinstance(v, bool)):
            raise V2ProtocolError(
                f"input '{name}' element {i} is {type(v).__name__}, not {datatype}"
            )
    return values


# ---------------------------------------------------------------------------------------------
# Responses
# ---------------------------------------------------------------------------------------------


@dataclass
class OutputTensor:
    """One response tensor: values as a numpy array in its v2 datatype, shape included."""

    name: str
    datatype: str
    array: np.ndarray


def _binary_of(tensor: OutputTensor) -> bytes:
    if tensor.datatype == "BYTES":
        return serialize_bytes([str(v).encode("utf-8") for v in tensor.array.ravel().tolist()])
    return np.ascontiguousarray(tensor.array, dtype=NUMPY_DTYPES[tensor.datatype]).tobytes()


def _json_data(tensor: OutputTensor) -> list[Any]:
    flat = tensor.array.ravel()
    if tensor.datatype == "BYTES":
        return [str(v) for v in flat.tolist()]
    return flat.tolist()


def encode_response(
    *,
    model_name: str,
    model_version: str,
    request_id: str | None,
    outputs: list[tuple[OutputTensor, bool]],
    parameters: dict[str, Any] | None = None,
) -> tuple[bytes, int | None]:
    """Build the response body; returns (body, JSON header length or None when all JSON).

    ``outputs`` pairs each tensor with whether the client asked for it as binary data.
    """
    header: dict[str, Any] = {"model_name": model_name, "model_version": model_version}
    if request_id is not None:
        header["id"] = request_id
    if parameters:
        header["parameters"] = parameters
    entries = []
    chunks: list[bytes] = []
    for tensor, binary in outputs:
        entry: dict[str, Any] = {
            "name": tensor.name,
            "datatype": tensor.datatype,
            "shape": list(tensor.array.shape),
        }
        if binary:
            raw = _binary_of(tensor)
            entry["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            entry["data"] = _json_data(tensor)
        entries.append(entry)
    header["outputs"] = entries
    head = orjson.dumps(header, option=orjson.OPT_SERIALIZE_NUMPY)
    if not chunks:
        return head, None
    return head + b"".join(chunks), len(head)
