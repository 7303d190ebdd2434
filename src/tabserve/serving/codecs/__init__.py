"""Codecs: protocol bodies → what the data plane takes, predictions → protocol bodies.

No HTTP framework and no model here: bytes and plain values in, bytes out, protocol mistakes
raised as ``BadRequest`` (serving/errors.py).

    v1.py        /predict: one JSON record or an array of them; answers with labels and
                 probabilities keyed by class
    v2.py        Open Inference Protocol v2 tensors, JSON and Triton's binary extension
    v2_model.py  a model in v2 terms: tensor names, datatypes, metadata, Triton config
"""
