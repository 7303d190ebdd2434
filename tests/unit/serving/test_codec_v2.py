"""v2 codec: requests built by tritonclient itself decode to the right columns, and our responses
parse back with tritonclient's own InferResult — the same code a real client runs."""

from __future__ import annotations

import numpy as np
import orjson
import pytest
import tritonclient.http as httpclient
from tritonclient.http._utils import _get_inference_request

from tabserve.serving.codecs.v2 import (
    OutputTensor,
    V2ProtocolError,
    decode_request,
    deserialize_bytes,
    encode_response,
    serialize_bytes,
)

SIZE_8 = {"binary_data_size": 8}


def _inputs(binary: bool) -> list[httpclient.InferInput]:
    age = httpclient.InferInput("Age", [3, 1], "FP64")
    age.set_data_from_numpy(np.array([[22.0], [np.nan], [38.5]]), binary_data=binary)
    sex = httpclient.InferInput("Sex", [3, 1], "BYTES")
    sex.set_data_from_numpy(
        np.array([["male"], ["female"], ["été"]], dtype=object), binary_data=binary
    )
    sibsp = httpclient.InferInput("SibSp", [3], "INT64")
    sibsp.set_data_from_numpy(np.array([1, 0, 2], dtype=np.int64), binary_data=binary)
    flag = httpclient.InferInput("Flag", [3, 1], "BOOL")
    flag.set_data_from_numpy(np.array([[True], [False], [True]]), binary_data=binary)
    return [age, sex, sibsp, flag]


def _tritonclient_body(binary: bool, request_id: str = "req-7") -> tuple[bytes, int | None]:
    return _get_inference_request(  # type: ignore[no-any-return]
        inputs=_inputs(binary),
        request_id=request_id,
        outputs=None,
        sequence_id=0,
        sequence_start=False,
        sequence_end=False,
        priority=0,
        timeout=None,
        custom_parameters=None,
    )


def test_binary_request_from_tritonclient_decodes_to_columns() -> None:
    body, header_length = _tritonclient_body(binary=True)
    assert header_length is not None  # tritonclient really sent binary tensors
    decoded = decode_request(body, str(header_length))
    assert decoded.n_rows == 3
    assert decoded.id == "req-7"
    assert decoded.binary_output is True  # no outputs named → tritonclient asks for binary
    age = decoded.columns["Age"]
    assert isinstance(age, np.ndarray)
    assert age[0] == 22.0 and np.isnan(age[1]) and age[2] == 38.5
    assert decoded.columns["Sex"] == ["male", "female", "été"]
    assert list(decoded.columns["SibSp"]) == [1, 0, 2]
    assert list(decoded.columns["Flag"]) == [True, False, True]


def test_json_request_from_tritonclient_decodes_to_the_same_values() -> None:
    inputs = _inputs(binary=False)
    body, header_length = _get_inference_request(
        inputs=inputs,
        request_id="",
        outputs=[httpclient.InferRequestedOutput("label", binary_data=False)],
        sequence_id=0,
        sequence_start=False,
        sequence_end=False,
        priority=0,
        timeout=None,
        custom_parameters=None,
    )
    assert header_length is None
    decoded = decode_request(body, None)
    assert decoded.id is None
    assert decoded.columns["Age"] == [22.0, None, 38.5]  # tritonclient writes NaN as a bare token
    assert decoded.columns["Sex"] == ["male", "female", "été"]
    assert decoded.columns["SibSp"] == [1, 0, 2]
    assert decoded.columns["Flag"] == [True, False, True]
    assert decoded.outputs is not None and decoded.outputs[0].name == "label"
    assert decoded.outputs[0].binary is False


def test_nested_json_data_and_null_as_missing() -> None:
    body = orjson.dumps(
        {
            "inputs": [
                {"name": "Age", "datatype": "FP64", "shape": [2, 1], "data": [[22], [None]]},
                {"name": "Sex", "datatype": "BYTES", "shape": [2], "data": ["male", "female"]},
            ]
        }
    )
    decoded = decode_request(body, None)
    assert decoded.columns == {"Age": [22, None], "Sex": ["male", "female"]}


def test_mixed_binary_and_json_inputs() -> None:
    header = orjson.dumps(
        {
            "inputs": [
                {"name": "Sex", "datatype": "BYTES", "shape": [1], "data": ["male"]},
                {
                    "name": "Fare",
                    "datatype": "FP32",
                    "shape": [1, 1],
                    "parameters": {"binary_data_size": 4},
                },
            ]
        }
    )
    decoded = decode_request(header + np.float32(7.25).tobytes(), str(len(header)))
    assert decoded.columns["Sex"] == ["male"]
    assert list(decoded.columns["Fare"]) == [7.25]


@pytest.mark.parametrize(
    ("tensor", "message"),
    [
        ({"name": "A", "datatype": "FP64", "shape": [2, 2], "data": [1, 2, 3, 4]}, "[N, 1]"),
        ({"name": "A", "datatype": "FP64", "shape": [2], "data": [1]}, "holds 1 values"),
        ({"name": "A", "datatype": "FP64", "shape": [1], "data": ["x"]}, "not FP64"),
        ({"name": "A", "datatype": "BYTES", "shape": [1], "data": [3]}, "not BYTES"),
        ({"name": "A", "datatype": "INT64", "shape": [1], "data": [1.5]}, "not INT64"),
        ({"name": "A", "datatype": "BOOL", "shape": [1], "data": [1]}, "not BOOL"),
        ({"name": "A", "datatype": "FP42", "shape": [1], "data": [1]}, "datatype 'FP42'"),
        ({"name": "A", "datatype": "FP64", "shape": [1]}, "neither 'data'"),
        ({"datatype": "FP64", "shape": [1], "data": [1]}, "'name'"),
    ],
)
def test_malformed_tensors_are_protocol_errors(tensor: dict, message: str) -> None:
    with pytest.raises(V2ProtocolError, match=message.replace("[", r"\[").replace("]", r"\]")):
        decode_request(orjson.dumps({"inputs": [tensor]}), None)


def test_inputs_must_agree_on_rows() -> None:
    body = orjson.dumps(
        {
            "inputs": [
                {"name": "A", "datatype": "FP64", "shape": [2], "data": [1, 2]},
                {"name": "B", "datatype": "FP64", "shape": [1], "data": [1]},
            ]
        }
    )
    with pytest.raises(V2ProtocolError, match="'B' has 1 rows"):
        decode_request(body, None)


def test_binary_sizes_must_add_up() -> None:
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "A",
                    "datatype": "FP64",
                    "shape": [1],
                    "parameters": {"binary_data_size": 8},
                }
            ]
        }
    )
    payload = np.float64(1.0).tobytes()
    with pytest.raises(V2ProtocolError, match="add up"):
        decode_request(header + payload + b"extra", str(len(header)))
    with pytest.raises(V2ProtocolError, match="runs past"):
        decode_request(header + payload[:4], str(len(header)))
    with pytest.raises(V2ProtocolError, match="does not fit"):
        decode_request(header, "999")
    with pytest.raises(V2ProtocolError, match="integer"):
        decode_request(header, "abc")


def test_wrong_byte_count_for_fixed_width_tensor() -> None:
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "A",
                    "datatype": "FP64",
                    "shape": [2],
                    "parameters": {"binary_data_size": 8},
                }
            ]
        }
    )
    with pytest.raises(V2ProtocolError, match="needs 16"):
        decode_request(header + np.float64(1.0).tobytes(), str(len(header)))


def test_bytes_tensor_round_trip_and_truncation() -> None:
    values = [b"", b"male", "été".encode()]
    raw = serialize_bytes(values)
    assert deserialize_bytes("A", raw) == values
    with pytest.raises(V2ProtocolError, match="length prefix"):
        deserialize_bytes("A", raw + b"\x01")
    with pytest.raises(V2ProtocolError, match="runs past"):
        deserialize_bytes("A", raw[:-1])


def test_not_json_and_not_an_object() -> None:
    with pytest.raises(V2ProtocolError, match="not valid JSON"):
        decode_request(b"{nope", None)
    with pytest.raises(V2ProtocolError, match="not valid JSON"):
        decode_request(b'{"inputs": [NaN', None)
    with pytest.raises(V2ProtocolError, match="JSON object"):
        decode_request(b"[1]", None)
    with pytest.raises(V2ProtocolError, match="non-empty 'inputs'"):
        decode_request(b"{}", None)


def _outputs() -> list[OutputTensor]:
    return [
        OutputTensor("label", "INT64", np.array([0, 1, 1], dtype=np.int64)),
        OutputTensor("probabilities", "FP64", np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6]])),
        OutputTensor("name", "BYTES", np.array(["a", "bé", ""], dtype=object)),
    ]


@pytest.mark.parametrize("binary", [True, False])
def test_response_parses_with_tritonclient(binary: bool) -> None:
    body, header_length = encode_response(
        model_name="titanic",
        model_version="3",
        request_id="req-7",
        outputs=[(t, binary) for t in _outputs()],
    )
    assert (header_length is not None) is binary
    result = httpclient.InferResult.from_response_body(body, header_length=header_length)
    response = result.get_response()
    assert response["id"] == "req-7"
    assert response["model_name"] == "titanic" and response["model_version"] == "3"
    np.testing.assert_array_equal(result.as_numpy("label"), [0, 1, 1])
    np.testing.assert_allclose(
        result.as_numpy("probabilities"), [[0.9, 0.1], [0.2, 0.8], [0.4, 0.6]]
    )
    names = result.as_numpy("name")
    assert [v.decode() if isinstance(v, bytes) else v for v in names.tolist()] == ["a", "bé", ""]


def test_response_mixes_binary_and_json_outputs() -> None:
    label, probs, _ = _outputs()
    body, header_length = encode_response(
        model_name="m", model_version="1", request_id=None, outputs=[(label, False), (probs, True)]
    )
    assert header_length is not None
    header = orjson.loads(body[:header_length])
    assert "id" not in header
    assert header["outputs"][0]["data"] == [0, 1, 1]
    assert header["outputs"][1]["parameters"] == {"binary_data_size": 48}
    assert len(body) == header_length + 48
