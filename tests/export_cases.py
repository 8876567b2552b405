"""The export table: one small case per core layer kind a spec may use, grouped into exported models.

Each case is one layer on its own input(s); a group is exported as one model with one input and
one output per case (named after the case), so a failing layer is named by the gate's report.
Layer kinds that are refused for a target are not here: compat.py gives their reasons, and
tests/test_export_layers.py checks that every schema layer is either here or refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Case:
    type: str
    args: dict = field(default_factory=dict)
    shape: tuple = (8,)  # one input, without batch
    dtype: str = "float32"
    inputs: int = 1  # merge layers take this many inputs of `shape`
    id: str = ""
    call: dict = field(default_factory=dict)  # extra keyword call arguments naming other inputs

    @property
    def name(self) -> str:
        return self.id or self.type.lower()


C = Case
IMG = (8, 8, 3)
SEQ = (6, 4)
VOL = (4, 4, 4, 2)

CASES: dict[str, list[Case]] = {
    "dense_and_core": [
        C("Dense", {"units": 4, "activation": "relu"}),
        C("EinsumDense", {"equation": "ab,bc->ac", "output_shape": 4, "bias_axes": "c"}),
        C("Activation", {"activation": "tanh"}),
        C("Identity"),
        C("Embedding", {"input_dim": 10, "output_dim": 4}, (5,), "int32"),
        C("ReversibleEmbedding", {"input_dim": 10, "output_dim": 4}, (5,), "int32"),
        C("Masking", {"mask_value": 0.0}, SEQ),
        C("Flatten", {}, IMG),
        C("Reshape", {"target_shape": [2, 4]}),
        C("Permute", {"dims": [2, 1]}, SEQ),
        C("RepeatVector", {"n": 3}),
        C("Rescaling", {"scale": 0.5, "offset": 0.1}),
        C("Dropout", {"rate": 0.5}),
        C("SpatialDropout1D", {"rate": 0.5}, SEQ),
        C("SpatialDropout2D", {"rate": 0.5}, IMG),
        C("SpatialDropout3D", {"rate": 0.5}, VOL),
        C("GaussianDropout", {"rate": 0.5}),
        C("GaussianNoise", {"stddev": 0.5}),
        C("AlphaDropout", {"rate": 0.5}),
        C("ActivityRegularization", {"l1": 0.01}),
        C("CategoryEncoding", {"num_tokens": 6, "output_mode": "multi_hot"}, (3,), "int32"),
        C("UnitNormalization", {"axis": -1}),
    ],
    "activation_layers": [
        C("ReLU", {"max_value": 6.0}),
        C("LeakyReLU", {"negative_slope": 0.1}),
        C("PReLU"),
        C("ELU", {"alpha": 1.0}),
        C("Softmax", {"axis": -1}),
    ],
    # Every activation name a spec may write, on a Dense layer (gelu is exact: rewritten for ONNX).
    "activations": [C("Dense", {"units": 4, "activation": a}, id=f"act_{a}") for a in (
        "celu elu exponential gelu glu hard_shrink hard_sigmoid hard_silu hard_swish hard_tanh leaky_relu linear "
        "log_sigmoid log_softmax mish relu relu6 selu sigmoid silu soft_shrink softmax softplus softsign "
        "sparse_plus sparse_sigmoid sparsemax squareplus swish tanh tanh_shrink").split()],
    "merge": [
        C("Add", inputs=2), C("Subtract", inputs=2), C("Multiply", inputs=2), C("Average", inputs=2),
        C("Maximum", inputs=2), C("Minimum", inputs=2), C("Concatenate", {"axis": -1}, inputs=2),
        C("Dot", {"axes": 1}, inputs=2),
    ],
    "conv": [
        C("Conv1D", {"filters": 3, "kernel_size": 3, "padding": "causal", "dilation_rate": 2}, SEQ),
        # Keras 3 computes the STFT as a convolution with DFT kernels (scipy makes the window): no FFT op.
        C("STFTSpectrogram", {"frame_length": 16, "frame_step": 8, "fft_length": 16}, (64, 1)),
        C("Conv2D", {"filters": 3, "kernel_size": 3, "strides": 2, "padding": "same"}, IMG),
        C("Conv3D", {"filters": 2, "kernel_size": 2}, VOL),
        C("Conv1DTranspose", {"filters": 3, "kernel_size": 3, "strides": 2}, SEQ),
        C("Conv2DTranspose", {"filters": 3, "kernel_size": 3, "strides": 2, "padding": "same"}, IMG),
        C("Conv3DTranspose", {"filters": 2, "kernel_size": 2, "strides": 2}, VOL),
        C("SeparableConv1D", {"filters": 3, "kernel_size": 3}, SEQ),
        C("SeparableConv2D", {"filters": 3, "kernel_size": 3}, IMG),
        C("DepthwiseConv1D", {"kernel_size": 3}, SEQ),
        C("DepthwiseConv2D", {"kernel_size": 3, "depth_multiplier": 2}, IMG),
    ],
    "pool_crop_pad": [
        C("MaxPooling1D", {"pool_size": 2}, SEQ), C("MaxPooling2D", {"pool_size": 2}, IMG),
        C("MaxPooling3D", {"pool_size": 2}, VOL), C("AveragePooling1D", {"pool_size": 2}, SEQ),
        C("AveragePooling2D", {"pool_size": 2, "padding": "same", "strides": 1}, IMG),
        C("AveragePooling3D", {"pool_size": 2}, VOL),
        C("GlobalAveragePooling1D", {}, SEQ), C("GlobalAveragePooling2D", {}, IMG),
        C("GlobalAveragePooling3D", {}, VOL), C("GlobalMaxPooling1D", {}, SEQ),
        C("GlobalMaxPooling2D", {"keepdims": True}, IMG), C("GlobalMaxPooling3D", {}, VOL),
        C("AdaptiveAveragePooling1D", {"output_size": 3}, SEQ),
        C("AdaptiveAveragePooling2D", {"output_size": 4}, IMG),
        C("AdaptiveAveragePooling3D", {"output_size": 2}, VOL),
        C("AdaptiveMaxPooling1D", {"output_size": 3}, SEQ),
        C("AdaptiveMaxPooling2D", {"output_size": 4}, IMG),
        C("AdaptiveMaxPooling3D", {"output_size": 2}, VOL),
        C("Cropping1D", {"cropping": 1}, SEQ), C("Cropping2D", {"cropping": 1}, IMG),
        C("Cropping3D", {"cropping": 1}, VOL), C("ZeroPadding1D", {"padding": 1}, SEQ),
        C("ZeroPadding2D", {"padding": [[1, 0], [0, 1]]}, IMG), C("ZeroPadding3D", {"padding": 1}, VOL),
        C("UpSampling1D", {"size": 2}, SEQ), C("UpSampling2D", {"size": 2, "interpolation": "bilinear"}, IMG),
        C("UpSampling3D", {"size": 2}, VOL),
    ],
    "normalization": [
        C("BatchNormalization", {}, IMG),
        C("LayerNormalization", {}, SEQ),
        C("GroupNormalization", {"groups": 2}, (4, 4)),
        C("RMSNormalization", {}, SEQ),
        C("SpectralNormalization", {"layer": {"type": "Dense", "units": 3}}),
        # Rewritten to constant arithmetic (compat.LAYER_REWRITES): scalar, per channel, other axes, inverted.
        C("Normalization", {"mean": 0.5, "variance": 2.0}),
        C("Normalization", {"axis": -1, "mean": [0.1, 0.2, 0.3], "variance": [1.0, 4.0, 0.25]}, IMG, id="norm_channels"),
        C("Normalization", {"axis": [1, 2], "mean": 0.3, "variance": 0.5}, IMG, id="norm_spatial"),
        C("Normalization", {"axis": None, "mean": 1.0, "variance": 9.0, "invert": True}, SEQ, id="norm_invert"),
        C("Normalization", {"axis": -1}, IMG, id="norm_adapted"),  # not adapted: mean 0, variance 1 weights
    ],
    "image": [
        C("Resizing", {"height": 5, "width": 6, "interpolation": "bilinear"}, IMG),
        C("Resizing", {"height": 16, "width": 16, "interpolation": "nearest"}, IMG, id="resizing_nearest"),
        C("CenterCrop", {"height": 4, "width": 6}, IMG),
        C("AutoContrast", {"value_range": [0, 1]}, IMG),
        C("Solarization", {"threshold_factor": 0.5, "value_range": [0, 1]}, IMG),
        C("RandomCrop", {"height": 4, "width": 6}, IMG),  # at inference: resize + center crop
        C("ContrastLimitedAdaptiveHistogramEqualization", {"value_range": [0, 1]}, IMG),
        C("Pipeline", {"layers": [{"type": "Rescaling", "scale": 0.5}, {"type": "CenterCrop", "height": 4,
                                                                        "width": 4}]}, IMG),
        C("MaxNumBoundingBoxes", {"max_number": 2}, IMG),  # boxes only: images pass through
    ],
    "recurrent": [
        C("SimpleRNN", {"units": 3}, SEQ),
        C("GRU", {"units": 3, "return_sequences": True}, SEQ),
        C("LSTM", {"units": 3}, SEQ),
        C("Bidirectional", {"layer": {"type": "LSTM", "units": 3, "return_sequences": True}}, SEQ),
        C("TimeDistributed", {"layer": {"type": "Dense", "units": 2}}, SEQ),
        C("RNN", {"cell": {"type": "GRUCell", "units": 3}}, SEQ),
        C("ConvLSTM1D", {"filters": 2, "kernel_size": 2}, (3, 6, 2)),
        C("ConvLSTM2D", {"filters": 2, "kernel_size": 2}, (3, 5, 5, 2)),
        C("ConvLSTM3D", {"filters": 2, "kernel_size": 2}, (2, 3, 3, 3, 1)),
    ],
    "attention": [
        C("MultiHeadAttention", {"num_heads": 2, "key_dim": 4}, SEQ, call={"value": 0}),
        C("GroupQueryAttention", {"head_dim": 4, "num_query_heads": 2, "num_key_value_heads": 1}, SEQ,
          call={"value": 0}),
        C("Attention", {}, SEQ, inputs=2),
        C("AdditiveAttention", {}, SEQ, inputs=2),
    ],
}

ALIASES = {
    "AvgPool1D": "AveragePooling1D", "AvgPool2D": "AveragePooling2D", "AvgPool3D": "AveragePooling3D",
    "MaxPool1D": "MaxPooling1D", "MaxPool2D": "MaxPooling2D", "MaxPool3D": "MaxPooling3D",
    "GlobalAvgPool1D": "GlobalAveragePooling1D", "GlobalAvgPool2D": "GlobalAveragePooling2D",
    "GlobalAvgPool3D": "GlobalAveragePooling3D", "GlobalMaxPool1D": "GlobalMaxPooling1D",
    "GlobalMaxPool2D": "GlobalMaxPooling2D", "GlobalMaxPool3D": "GlobalMaxPooling3D",
    "Convolution1D": "Conv1D", "Convolution2D": "Conv2D", "Convolution3D": "Conv3D",
    "Convolution1DTranspose": "Conv1DTranspose", "Convolution2DTranspose": "Conv2DTranspose",
    "Convolution3DTranspose": "Conv3DTranspose", "SeparableConvolution1D": "SeparableConv1D",
    "SeparableConvolution2D": "SeparableConv2D",
}
# Cells are arguments of RNN (covered through it), never a node of their own.
CELLS = {"GRUCell": "RNN", "LSTMCell": "RNN", "SimpleRNNCell": "RNN", "StackedRNNCells": "RNN"}


def group_spec(group: str, cases: list[Case]) -> str:
    """A spec (JSON is YAML) with an input per case (``<case>_in``, ``<case>_in1``) and an output per case."""
    inputs, nodes, outputs = {}, [], {}
    for case in cases:
        names = [f"{case.name}_in" + (str(k) if k else "") for k in range(case.inputs)]
        for n in names:
            inputs[n] = {"shape": list(case.shape), "dtype": case.dtype}
        node = {"name": case.name, "type": case.type, **case.args}
        if case.call:
            node["in"] = {"query": names[0], **{k: names[v] for k, v in case.call.items()}}
        else:
            node["in"] = names if case.inputs > 1 else names[0]
        nodes.append(node)
        outputs[case.name] = case.name
    return json.dumps({"netspec": 1, "name": group, "inputs": inputs, "nodes": nodes, "outputs": outputs}, indent=1)


# Layers that a target refuses (compat.LAYERS) or that netspec rewrites (compat.AUGMENTATION),
# each with a case that proves the refusal real (tests export them with the compat check off).
REFUSED: dict[str, Case] = {c.type: c for c in (
    C("TextVectorization", {"max_tokens": 10, "output_sequence_length": 4}, (), "string"),
    C("StringLookup", {"vocabulary": ["a", "b"]}, (2,), "string"),
    C("Hashing", {"num_bins": 4}, (2,), "int32"),
    C("HashedCrossing", {"num_bins": 4}, (), "int32", inputs=2),
    C("IntegerLookup", {"vocabulary": [1, 2, 3]}, (2,), "int32"),
    C("Discretization", {"bin_boundaries": [0.0, 0.5]}),
    C("Equalization", {"value_range": [0, 1]}, IMG),
    C("MelSpectrogram", {"fft_length": 16, "sequence_stride": 8, "sequence_length": 16, "num_mel_bins": 4}, (64,)),
)}
AUGMENT: list[Case] = [
    C("RandomFlip", {}, IMG), C("RandomRotation", {"factor": 0.1}, IMG), C("RandomZoom", {"height_factor": 0.1}, IMG),
    C("RandomTranslation", {"height_factor": 0.1, "width_factor": 0.1}, IMG),
    C("RandomContrast", {"factor": 0.1}, IMG), C("RandomBrightness", {"factor": 0.1}, IMG),
    C("RandomColorDegeneration", {"factor": 0.1}, IMG), C("RandomColorJitter", {"value_range": [0, 1]}, IMG),
    C("RandomElasticTransform", {}, IMG), C("RandomErasing", {}, IMG), C("RandomGaussianBlur", {}, IMG),
    C("RandomGrayscale", {}, IMG), C("RandomHue", {"factor": 0.1}, IMG), C("RandomInvert", {}, IMG),
    C("RandomPerspective", {}, IMG), C("RandomPosterization", {"factor": 4, "value_range": [0, 1]}, IMG),
    C("RandomSaturation", {"factor": 0.1}, IMG), C("RandomSharpness", {"factor": 0.1}, IMG),
    C("RandomShear", {"x_factor": 0.1}, IMG), C("AugMix", {}, IMG), C("RandAugment", {}, IMG),
    C("CutMix", {}, IMG), C("MixUp", {}, IMG),
]


def lively(model, x) -> None:
    """Give an untrained model's BatchNormalization layers the statistics of ``x`` (one forward pass).

    Freshly initialised deep CNNs (MobileNetV2, ResNet50) shrink activations block by block: their
    outputs are constant to ~1e-11 and any export "matches". With each layer's moving mean and
    variance set to what it sees on ``x``, the activations keep unit scale, the outputs vary,
    and parity and top-1 figures mean something.
    """
    import keras

    bns = [l for l in model._flatten_layers(include_self=False) if isinstance(l, keras.layers.BatchNormalization)]
    if not bns:  # nothing to set (ConvNeXt's LayerNormalization): no forward pass
        return
    saved = [bn.momentum for bn in bns]
    for bn in bns:
        bn.momentum = 0.0
    args = [x[t.name] for t in model.inputs] if isinstance(x, dict) else [x]
    try:
        model(args[0] if len(args) == 1 else args, training=True)
    finally:
        for bn, m in zip(bns, saved):
            bn.momentum = m
