"""Example user layers for netspec specs: the custom layers of the seed articles, ported to Keras 3.

A spec loads this file with ``plugins: [seed_layers.py]``; netspec imports it only when the spec is
trusted (``--trust-plugins`` on the CLI, ``trust_plugins=True`` in the API). Each class is then a
``type:`` a spec may name, and is registered for Keras serialization, so a saved ``.keras`` model
loads back with ``keras.saving.load_model(path, safe_mode=True)`` in any process that has loaded
this plugin first (for example by ``netspec.load(spec, trust_plugins=True)``).

The layers follow the Keras 3 guide "Making new layers and models via subclassing": weights are
made in ``build()`` with ``add_weight``; sublayers are made in ``__init__`` (or in ``build()`` when
their size depends on the input) and built explicitly in ``build()``, so a reloaded model has every
variable before its weights are read; ``get_config()`` returns every constructor argument; only
``keras.ops`` / ``keras.random`` are used, so the layers run on every Keras backend. Keras infers
every output shape by tracing ``call()`` symbolically, so none of them overrides
``compute_output_shape`` (and ``netspec check`` therefore runs the real ``call``).

Layers (seed article in brackets):
    Linear             a dense layer written by hand (Keras guide, "Making new layers via subclassing")
    ComputeSum         a non-trainable accumulator weight (same guide)
    MyLayer            two inputs, two outputs (Keras 2 docs "Writing your own Keras layers", in a
                       Chinese blog post on custom layers)
    PAM                DANet's position attention module (blog post "keras自定义层", Fu et al. 2019)
    Scale              learnable per-channel scale and shift (same post, "别人的例子")
    ConvBnReLU         Conv2D + BatchNormalization + ReLU as one layer (TF 2.0 LeNet-5 post)
    LocallyConnected2D convolution with unshared weights (Keras 2 source quoted in "keras自定义层";
                       removed from Keras 3)
    Sampling           the VAE reparameterisation trick with a KL loss (Keras guide's VAE)
"""

from __future__ import annotations

import keras
from keras import ops

import netspec


def _positive_int(name: str, value) -> int:
    """Keras-style argument check: say what was expected and what was received."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"Argument `{name}` must be a positive integer. Received: {name}={value!r}")
    return value


def _pair(name: str, value) -> tuple[int, int]:
    """An int or a pair of ints (kernel sizes, strides) as a pair of positive ints."""
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2:
        raise ValueError(f"Argument `{name}` must be an integer or a pair of integers. Received: {name}={value!r}")
    return _positive_int(name, pair[0]), _positive_int(name, pair[1])


@netspec.register_layer
class Linear(keras.layers.Layer):
    """A fully connected layer written from scratch: ``inputs @ w + b`` (no activation).

    The running example of the Keras guide "Making new layers and models via subclassing"
    (fchollet), in its recommended form: the kernel's input size is read from the input shape in
    ``build()``, so the layer only needs ``units``. It matches ``keras.layers.Dense(units)`` given
    the same weights.

    Args:
        units: positive integer, the size of the output's last axis.
        kernel_initializer: initializer of ``w`` (a Keras initializer name).
        bias_initializer: initializer of ``b`` (a Keras initializer name).
    """

    def __init__(self, units, kernel_initializer="random_normal", bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        self.units = _positive_int("units", units)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.input_spec = keras.InputSpec(min_ndim=2)

    def build(self, input_shape):
        in_dim = input_shape[-1]
        if in_dim is None:
            raise ValueError(f"Linear needs a known last input dimension. Received: input_shape={input_shape}")
        self.w = self.add_weight(shape=(in_dim, self.units), initializer=self.kernel_initializer, name="kernel")
        self.b = self.add_weight(shape=(self.units,), initializer=self.bias_initializer, name="bias")
        # Later calls must feed the same width the kernel was made for.
        self.input_spec = keras.InputSpec(min_ndim=2, axes={-1: in_dim})

    def call(self, inputs):
        return ops.matmul(inputs, self.w) + self.b

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            bias_initializer=keras.initializers.serialize(self.bias_initializer),
        )
        return config


@netspec.register_layer
class ComputeSum(keras.layers.Layer):
    """Passes its input through and accumulates its sum in a non-trainable weight ``total``.

    From the Keras guide's example of non-trainable weights. The guide's layer returned the running
    total itself, so its output depended on how often it had been called before (and had no batch
    axis). This port is deterministic instead:

    * the output is the input, unchanged, so predictions never depend on the accumulator;
    * ``total`` (one value per feature of the last axis) grows by the sum of the input over every
      other axis only when the layer runs in training mode (``fit``, or ``training=True``), like the
      moving statistics of ``BatchNormalization``. ``predict``, ``evaluate``, plain ``model(x)`` and
      netspec's symbolic ``check``/``build`` leave it as it is, so the same training data always
      gives the same total.

    ``total`` is a weight: it counts in the model's non-trainable parameters and is saved and
    reloaded with the model.
    """

    def __init__(self, **kwargs):
        # Only the base Layer arguments (a spec may set `trainable`, `dtype`); the size comes from build().
        super().__init__(**kwargs)

    def build(self, input_shape):
        if input_shape[-1] is None:
            raise ValueError(f"ComputeSum needs a known last input dimension. Received: input_shape={input_shape}")
        self.total = self.add_weight(shape=(input_shape[-1],), initializer="zeros", trainable=False, name="total")

    def call(self, inputs, training=None):
        if training:
            axes = tuple(range(len(inputs.shape) - 1))
            self.total.assign_add(ops.cast(ops.sum(inputs, axis=axes), self.total.dtype))
        return inputs


@netspec.register_layer
class MyLayer(keras.layers.Layer):
    """The two-input, two-output layer of the Keras 2 documentation ("Writing your own Keras layers").

    Called on ``[a, b]`` with ``a`` of shape ``(batch, ..., n)`` and ``b`` of shape
    ``(batch, ..., output_dim)``, it returns ``[a @ kernel + b, mean(b, axis=-1)]``: shapes
    ``(batch, ..., output_dim)`` and ``(batch, ...)``. In a spec the outputs are ``name.0`` and
    ``name.1``.

    Args:
        output_dim: positive integer, the last axis of the first output; equal to ``b``'s last axis.
        kernel_initializer: initializer of ``kernel`` (a Keras initializer name; the seed's uniform).
    """

    def __init__(self, output_dim, kernel_initializer="random_uniform", **kwargs):
        super().__init__(**kwargs)
        self.output_dim = _positive_int("output_dim", output_dim)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) != 2 or \
                not all(isinstance(s, (list, tuple)) for s in input_shape):
            raise ValueError(f"MyLayer takes a list of two tensors [a, b]. Received: input_shape={input_shape}")
        shape_a, shape_b = input_shape
        if shape_b[-1] != self.output_dim:
            raise ValueError(f"MyLayer adds b to a projection of size output_dim={self.output_dim}, so b's last "
                             f"axis must be {self.output_dim}. Received: b.shape={tuple(shape_b)}")
        self.kernel = self.add_weight(shape=(shape_a[-1], self.output_dim), initializer=self.kernel_initializer,
                                      name="kernel")

    def call(self, inputs):
        a, b = inputs
        return [ops.matmul(a, self.kernel) + b, ops.mean(b, axis=-1)]

    def get_config(self):
        config = super().get_config()
        config.update(output_dim=self.output_dim,
                      kernel_initializer=keras.initializers.serialize(self.kernel_initializer))
        return config


@netspec.register_layer
class PAM(keras.layers.Layer):
    """DANet's position attention module (Fu et al., "Dual Attention Network for Scene
    Segmentation", CVPR 2019), from the blog post "keras自定义层" (channels-last).

    For a feature map ``A`` of shape ``(batch, h, w, c)``: 1x1 convolutions give queries and keys
    with ``c // reduction`` channels and values with ``c``; the attention ``softmax(Q K^T)`` over the
    ``h * w`` positions mixes the values, and ``out = gamma * attention(A) + A``. ``gamma`` is learned
    and starts at zero, so the module starts as the identity.

    The seed created its three Conv2D layers inside ``call()`` (new, untracked weights on every
    call); here they are made and built in ``build()``, where the channel count is known.

    Args:
        reduction: positive integer, the channel reduction of queries and keys (DANet: 8).
        gamma_initializer: initializer of ``gamma`` (a Keras initializer name; zeros).
        gamma_regularizer: regularizer of ``gamma`` (a Keras regularizer name), or None.
        gamma_constraint: constraint on ``gamma`` (a Keras constraint name), or None.
    """

    def __init__(self, reduction=8, gamma_initializer="zeros", gamma_regularizer=None, gamma_constraint=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.reduction = _positive_int("reduction", reduction)
        self.gamma_initializer = keras.initializers.get(gamma_initializer)
        self.gamma_regularizer = keras.regularizers.get(gamma_regularizer)
        self.gamma_constraint = keras.constraints.get(gamma_constraint)
        self.input_spec = keras.InputSpec(ndim=4)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None or channels // self.reduction < 1:
            raise ValueError(f"PAM needs at least reduction={self.reduction} input channels. "
                             f"Received: input_shape={tuple(input_shape)}")
        inner = channels // self.reduction

        def conv(filters, name):
            return keras.layers.Conv2D(filters, 1, use_bias=False, kernel_initializer="he_normal", name=name,
                                       dtype=self.dtype_policy)

        self.query_conv, self.key_conv = conv(inner, "query"), conv(inner, "key")
        self.value_conv = conv(channels, "value")
        for layer in (self.query_conv, self.key_conv, self.value_conv):
            layer.build(input_shape)
        self.gamma = self.add_weight(shape=(1,), initializer=self.gamma_initializer, regularizer=self.gamma_regularizer,
                                     constraint=self.gamma_constraint, name="gamma")
        self.input_spec = keras.InputSpec(ndim=4, axes={-1: channels})

    def call(self, inputs):
        # Spatial sizes may be unknown until run time; the channel counts are fixed by build().
        shape = ops.shape(inputs)
        positions = shape[1] * shape[2]
        channels, inner = self.value_conv.filters, self.query_conv.filters
        q = ops.reshape(self.query_conv(inputs), (-1, positions, inner))
        k = ops.reshape(self.key_conv(inputs), (-1, positions, inner))
        v = ops.reshape(self.value_conv(inputs), (-1, positions, channels))
        attention = ops.softmax(ops.matmul(q, ops.transpose(k, (0, 2, 1))), axis=-1)  # (batch, N, N)
        mixed = ops.reshape(ops.matmul(attention, v), (-1, shape[1], shape[2], channels))
        return self.gamma * mixed + inputs

    def get_config(self):
        config = super().get_config()
        config.update(
            reduction=self.reduction,
            gamma_initializer=keras.initializers.serialize(self.gamma_initializer),
            gamma_regularizer=keras.regularizers.serialize(self.gamma_regularizer),
            gamma_constraint=keras.constraints.serialize(self.gamma_constraint),
        )
        return config


@netspec.register_layer
class Scale(keras.layers.Layer):
    """A learnable per-channel scale and shift: ``out = inputs * gamma + beta`` along one axis.

    The "Scale" layer of the blog post "keras自定义层" (used with DenseNet/ResNet Caffe ports to
    follow a BatchNormalization that has no scale). Differences from the seed: the weights are
    made with ``add_weight`` (the seed assigned ``K.variable``s to ``trainable_weights``), the unused
    ``momentum`` argument and the ``weights`` argument are gone (initial weights belong in
    checkpoints), and the shift can be switched off.

    Args:
        axis: integer, the channel axis (default the last); not the batch axis.
        use_bias: boolean, whether to learn ``beta`` as well as ``gamma``.
        gamma_initializer: initializer of ``gamma`` (a Keras initializer name; ones).
        beta_initializer: initializer of ``beta`` (a Keras initializer name; zeros).
    """

    def __init__(self, axis=-1, use_bias=True, gamma_initializer="ones", beta_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise ValueError(f"Argument `axis` must be an integer. Received: axis={axis!r}")
        self.axis = axis
        self.use_bias = bool(use_bias)
        self.gamma_initializer = keras.initializers.get(gamma_initializer)
        self.beta_initializer = keras.initializers.get(beta_initializer)

    def build(self, input_shape):
        ndim = len(input_shape)
        axis = self.axis % ndim if -ndim <= self.axis < ndim else None
        if axis is None or axis == 0 or input_shape[axis] is None:
            raise ValueError(f"Scale needs a known, non-batch axis. Received: axis={self.axis}, "
                             f"input_shape={tuple(input_shape)}")
        dim = input_shape[axis]
        self.gamma = self.add_weight(shape=(dim,), initializer=self.gamma_initializer, name="gamma")
        self.beta = (self.add_weight(shape=(dim,), initializer=self.beta_initializer, name="beta")
                     if self.use_bias else None)
        # The weights broadcast against the input along `axis` only.
        self._broadcast = tuple(dim if i == axis else 1 for i in range(ndim))
        self.input_spec = keras.InputSpec(ndim=ndim, axes={axis: dim})

    def call(self, inputs):
        out = inputs * ops.reshape(self.gamma, self._broadcast)
        if self.beta is not None:
            out = out + ops.reshape(self.beta, self._broadcast)
        return out

    def get_config(self):
        config = super().get_config()
        config.update(axis=self.axis, use_bias=self.use_bias,
                      gamma_initializer=keras.initializers.serialize(self.gamma_initializer),
                      beta_initializer=keras.initializers.serialize(self.beta_initializer))
        return config


@netspec.register_layer
class ConvBnReLU(keras.layers.Layer):
    """Conv2D, BatchNormalization and ReLU as one layer: the composite-layer example (``Conv_Bn_ReLU``)
    of the TensorFlow 2.0 LeNet-5 post on defining network layers.

    The convolution has no bias, unlike the seed's: BatchNormalization subtracts the mean right
    after it and adds its own ``beta``, so a bias would be a wasted, gradient-free parameter.
    BatchNormalization follows ``training`` (batch statistics in ``fit``, moving ones otherwise).

    Args:
        filters: positive integer, the number of output channels.
        kernel_size: an integer, or a tuple/list of 2 integers: the convolution window.
        strides: an integer, or a tuple/list of 2 integers: the convolution strides.
        padding: "same" (default) or "valid", as for ``keras.layers.Conv2D``.
    """

    def __init__(self, filters, kernel_size, strides=1, padding="same", **kwargs):
        super().__init__(**kwargs)
        self.filters, self.kernel_size, self.strides, self.padding = filters, kernel_size, strides, padding
        # Sublayers whose sizes do not depend on the input are made here (the guide's advice).
        self.conv = keras.layers.Conv2D(filters, kernel_size, strides=strides, padding=padding, use_bias=False,
                                        name="conv", dtype=self.dtype_policy)
        self.bn = keras.layers.BatchNormalization(name="bn", dtype=self.dtype_policy)
        self.relu = keras.layers.ReLU(name="relu", dtype=self.dtype_policy)

    def build(self, input_shape):
        # Built here, not lazily in call(): a reloaded model must own every variable before loading.
        self.conv.build(input_shape)
        self.bn.build(self.conv.compute_output_shape(input_shape))

    def call(self, inputs, training=None):
        return self.relu(self.bn(self.conv(inputs), training=training))

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, kernel_size=self.kernel_size, strides=self.strides, padding=self.padding)
        return config


@netspec.register_layer
class LocallyConnected2D(keras.layers.Layer):
    """A 2D convolution with unshared weights: every output position has its own filters.

    Keras 2's ``LocallyConnected2D`` (quoted in the blog post "keras自定义层"), removed from Keras 3,
    rewritten over ``keras.ops.image.extract_patches``: channels-last only, no regularizers or
    constraints. The kernel keeps Keras 2's layout, ``(out_rows * out_cols, kh * kw * channels,
    filters)``, with the bias ``(out_rows, out_cols, filters)``. It needs known spatial sizes, and it
    is large: ``out_rows * out_cols`` times the parameters of the matching Conv2D.

    Args:
        filters: positive integer, the number of output channels.
        kernel_size: an integer, or a tuple/list of 2 integers: the window.
        strides: an integer, or a tuple/list of 2 integers: the window's steps.
        padding: "valid" (Keras 2's only choice) or "same".
        activation: an activation name, or None.
        use_bias: boolean, whether to learn a bias per output position and filter.
        kernel_initializer: initializer of ``kernel`` (a Keras initializer name).
        bias_initializer: initializer of ``bias`` (a Keras initializer name).
    """

    def __init__(self, filters, kernel_size, strides=1, padding="valid", activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        self.filters = _positive_int("filters", filters)
        self.kernel_size = _pair("kernel_size", kernel_size)
        self.strides = _pair("strides", strides)
        if padding not in ("valid", "same"):
            raise ValueError(f"Argument `padding` must be 'valid' or 'same'. Received: padding={padding!r}")
        self.padding = padding
        self.activation = keras.activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.input_spec = keras.InputSpec(ndim=4)

    def _out_size(self, size: int, k: int, s: int) -> int:
        return -(-size // s) if self.padding == "same" else (size - k) // s + 1

    def build(self, input_shape):
        _, rows, cols, channels = input_shape
        if rows is None or cols is None or channels is None:
            raise ValueError("LocallyConnected2D needs known rows, columns and channels. "
                             f"Received: input_shape={tuple(input_shape)}")
        (kh, kw), (sh, sw) = self.kernel_size, self.strides
        self.out_rows, self.out_cols = self._out_size(rows, kh, sh), self._out_size(cols, kw, sw)
        if self.out_rows < 1 or self.out_cols < 1:
            raise ValueError(f"LocallyConnected2D kernel_size={self.kernel_size} is larger than the input. "
                             f"Received: input_shape={tuple(input_shape)}")
        self.kernel = self.add_weight(shape=(self.out_rows * self.out_cols, kh * kw * channels, self.filters),
                                      initializer=self.kernel_initializer, name="kernel")
        self.bias = (self.add_weight(shape=(self.out_rows, self.out_cols, self.filters),
                                     initializer=self.bias_initializer, name="bias") if self.use_bias else None)
        self.input_spec = keras.InputSpec(ndim=4, axes={-1: channels})

    def call(self, inputs):
        # Patches come out as (batch, out_rows, out_cols, kh * kw * channels), ordered (kh, kw, c).
        patches = ops.image.extract_patches(inputs, self.kernel_size, strides=self.strides, padding=self.padding,
                                            data_format="channels_last")
        patches = ops.reshape(patches, (-1, self.out_rows * self.out_cols, self.kernel.shape[1]))
        out = ops.einsum("bpk,pkf->bpf", patches, self.kernel)
        out = ops.reshape(out, (-1, self.out_rows, self.out_cols, self.filters))
        if self.bias is not None:
            out = out + self.bias
        return self.activation(out)

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters, kernel_size=self.kernel_size, strides=self.strides, padding=self.padding,
            activation=keras.activations.serialize(self.activation), use_bias=self.use_bias,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            bias_initializer=keras.initializers.serialize(self.bias_initializer),
        )
        return config


@netspec.register_layer
class Sampling(keras.layers.Layer):
    """The VAE reparameterisation trick: ``z = z_mean + exp(z_log_var / 2) * eps``, ``eps ~ N(0, 1)``.

    From the end-to-end VAE of the Keras guide "Making new layers and models via subclassing"
    (Kingma & Welling, "Auto-Encoding Variational Bayes", 2014). Called on ``[z_mean, z_log_var]``
    (same shapes). Each call also adds the KL divergence of ``N(z_mean, exp(z_log_var))`` from
    ``N(0, 1)`` with ``add_loss``, as the guide's VAE model did: ``-0.5 * mean(1 + z_log_var -
    z_mean**2 - exp(z_log_var))``, averaged over batch and latent axes; it is >= 0 and ``fit`` adds
    it to the model's loss.

    It samples in every mode (it is the generative path). Draws come from a
    ``keras.random.SeedGenerator``: with an integer ``seed``, a freshly built (or reloaded) model
    starts the same noise sequence (Keras saves the weights, not the generator's position); with
    ``seed=None`` every instance gets a random seed.

    Args:
        seed: integer seed of the noise, or None for a random one.
    """

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError(f"Argument `seed` must be an integer or None. Received: seed={seed!r}")
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) != 2 or \
                tuple(input_shape[0]) != tuple(input_shape[1]):
            raise ValueError("Sampling takes [z_mean, z_log_var], two tensors of the same shape. "
                             f"Received: input_shape={input_shape}")

    def call(self, inputs):
        z_mean, z_log_var = inputs
        kl = -0.5 * ops.mean(1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))
        self.add_loss(kl)
        epsilon = keras.random.normal(ops.shape(z_mean), dtype=z_mean.dtype, seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * epsilon

    def get_config(self):
        config = super().get_config()
        config.update(seed=self.seed)
        return config
