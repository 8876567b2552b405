"""What a ``train:`` section may name: whitelists of optimizers, schedules, losses, metrics, callbacks.

Plain data, no Keras import: ``netspec validate`` checks names against these tables and the schema
generator types each class's arguments from its Keras signature. Nothing here is looked up by a
name the spec chose; the trainer builds objects only through these tables.
"""

from __future__ import annotations

from typing import TypeGuard

OPTIMIZERS = ("Adadelta", "Adagrad", "Adam", "AdamW", "Adamax", "Ftrl", "Lamb", "Lion", "Nadam", "RMSprop", "SGD")
# Lower-case identifiers Keras accepts for the same classes (`optimizer: adam`).
OPTIMIZER_STRINGS = {name.lower(): name for name in OPTIMIZERS}

LR_SCHEDULES = ("CosineDecay", "CosineDecayRestarts", "ExponentialDecay", "InverseTimeDecay",
                "PiecewiseConstantDecay", "PolynomialDecay")

LOSSES = (
    "BinaryCrossentropy", "BinaryFocalCrossentropy", "CategoricalCrossentropy", "CategoricalFocalCrossentropy",
    "CategoricalHinge", "CosineSimilarity", "Dice", "Hinge", "Huber", "KLDivergence", "LogCosh",
    "MeanAbsoluteError", "MeanAbsolutePercentageError", "MeanSquaredError", "MeanSquaredLogarithmicError",
    "Poisson", "SparseCategoricalCrossentropy", "SquaredHinge", "Tversky",
)
# String identifiers -> the class they stand for (what the label checks and log names go by).
LOSS_STRINGS = {
    "binary_crossentropy": "BinaryCrossentropy", "bce": "BinaryCrossentropy",
    "binary_focal_crossentropy": "BinaryFocalCrossentropy",
    "categorical_crossentropy": "CategoricalCrossentropy",
    "categorical_focal_crossentropy": "CategoricalFocalCrossentropy",
    "categorical_hinge": "CategoricalHinge", "cosine_similarity": "CosineSimilarity", "dice": "Dice",
    "hinge": "Hinge", "huber": "Huber", "kl_divergence": "KLDivergence", "kld": "KLDivergence",
    "log_cosh": "LogCosh", "mean_absolute_error": "MeanAbsoluteError", "mae": "MeanAbsoluteError",
    "mean_absolute_percentage_error": "MeanAbsolutePercentageError", "mape": "MeanAbsolutePercentageError",
    "mean_squared_error": "MeanSquaredError", "mse": "MeanSquaredError",
    "mean_squared_logarithmic_error": "MeanSquaredLogarithmicError", "msle": "MeanSquaredLogarithmicError",
    "poisson": "Poisson", "sparse_categorical_crossentropy": "SparseCategoricalCrossentropy",
    "squared_hinge": "SquaredHinge", "tversky": "Tversky",
}

METRICS = (
    "AUC", "Accuracy", "BinaryAccuracy", "BinaryCrossentropy", "BinaryIoU", "CategoricalAccuracy",
    "CategoricalCrossentropy", "CategoricalHinge", "ConcordanceCorrelation", "CosineSimilarity", "F1Score",
    "FBetaScore", "FalseNegatives", "FalsePositives", "Hinge", "IoU", "KLDivergence", "LogCoshError",
    "MeanAbsoluteError", "MeanAbsolutePercentageError", "MeanIoU", "MeanSquaredError",
    "MeanSquaredLogarithmicError", "OneHotIoU", "OneHotMeanIoU", "PearsonCorrelation", "Poisson", "Precision",
    "PrecisionAtRecall", "R2Score", "Recall", "RecallAtPrecision", "RootMeanSquaredError",
    "SensitivityAtSpecificity", "SparseCategoricalAccuracy", "SparseCategoricalCrossentropy",
    "SparseTopKCategoricalAccuracy", "SpecificityAtSensitivity", "SquaredHinge", "TopKCategoricalAccuracy",
    "TrueNegatives", "TruePositives",
)
# String identifiers Keras's compile() accepts; "accuracy"/"acc" pick the variant that fits the loss.
METRIC_STRINGS = (
    "accuracy", "acc", "auc", "binary_accuracy", "binary_crossentropy", "categorical_accuracy",
    "categorical_crossentropy", "categorical_hinge", "cosine_similarity", "f1_score", "hinge", "kl_divergence",
    "log_cosh_error", "mae", "mape", "mean_absolute_error", "mean_absolute_percentage_error",
    "mean_squared_error", "mean_squared_logarithmic_error", "mse", "msle", "poisson", "precision", "r2_score",
    "recall", "root_mean_squared_error", "sparse_categorical_accuracy", "sparse_categorical_crossentropy",
    "sparse_top_k_categorical_accuracy", "squared_hinge", "top_k_categorical_accuracy",
)

CALLBACKS = ("EarlyStopping", "ReduceLROnPlateau", "SwapEMAWeights", "TerminateOnNaN")
# Keras callbacks a spec cannot name, and why (the message tells the user what to do instead).
REFUSED_CALLBACKS = {
    "LambdaCallback": "it runs Python callables, which a spec cannot carry",
    "RemoteMonitor": "it sends training logs over the network",
    "LearningRateScheduler": "it takes a Python function; give the optimizer a schedule instead: "
                             "learning_rate: {type: CosineDecay, initial_learning_rate: ..., decay_steps: ...}",
    "ModelCheckpoint": "netspec train writes checkpoints and the best model into the run directory "
                       "(choose the best by train.checkpoint.monitor)",
    "BackupAndRestore": "netspec train checkpoints every epoch; continue with `netspec train --resume`",
    "CSVLogger": "netspec train writes history.csv into the run directory",
    "TensorBoard": "netspec train writes TensorBoard logs into the run directory (logs/)",
    "ProgbarLogger": "netspec train shows Keras's progress bar itself",
    "History": "netspec train records the history itself (history.csv)",
    "Callback": "it is the abstract base class",
}

# Log names whose best value is the largest (mode "auto" of EarlyStopping and friends); others: smallest.
_MAX_WORDS = ("acc", "accuracy", "auc", "precision", "recall", "f1", "fbeta", "iou", "r2", "correlation",
              "true_positives", "true_negatives", "at_recall", "at_precision", "at_sensitivity", "at_specificity")


def better_is_higher(log_name: str) -> bool:
    """Whether a larger value of the logged quantity is better (accuracy yes, loss no)."""
    name = log_name[4:] if log_name.startswith("val_") else log_name
    if name.endswith("loss"):
        return False
    return any(name == w or name.endswith("_" + w) or name.startswith(w) for w in _MAX_WORDS)



# ---------------------------------------------------------------------------------------------
# Metric state: the variables a metric class allocates follow from its arguments, so they are
# paid for before Keras makes them (an IoU's confusion matrix is num_classes^2 numbers).

MAX_METRIC_STATE_BYTES = 64 << 20
_IOU_METRICS = ("IoU", "MeanIoU", "OneHotIoU", "OneHotMeanIoU")
# Metrics that keep a few counters per threshold: (class, counters, default num_thresholds).
_THRESHOLD_METRICS = {"AUC": (4, 200), "PrecisionAtRecall": (4, 200), "RecallAtPrecision": (4, 200),
                      "SensitivityAtSpecificity": (4, 200), "SpecificityAtSensitivity": (4, 200),
                      "Precision": (2, None), "Recall": (2, None), "TruePositives": (1, None),
                      "TrueNegatives": (1, None), "FalsePositives": (1, None), "FalseNegatives": (1, None)}
_ITEMSIZE = {"float64": 8, "float16": 2, "bfloat16": 2, "mixed_float16": 2, "mixed_bfloat16": 2}


def metric_state(name: str, args: dict) -> tuple[int, str, str] | None:
    """The bytes of variables a metric class allocates with ``args``, the argument that sizes them and
    a phrase for what they are; None for metrics whose state is a few numbers (or follows the outputs).

    Args:
        name: a whitelisted metric class (``METRICS``).
        args: its arguments as written (interpolated), without ``type``.
    """
    dtype = args.get("dtype")
    itemsize = _ITEMSIZE.get(dtype if isinstance(dtype, str) else "", 4)
    if name in _IOU_METRICS:
        n = args.get("num_classes")
        if not _count(n):
            return None
        return n * n * itemsize, f"num_classes={n}", f"a {n} x {n} confusion matrix"
    if name not in _THRESHOLD_METRICS:
        return None
    counters, default = _THRESHOLD_METRICS[name]
    thresholds = args.get("thresholds")
    if isinstance(thresholds, list):
        # AUC adds the two end points to the thresholds it is given.
        n, arg = len(thresholds) + (2 if name == "AUC" else 0), f"thresholds (a list of {len(thresholds)})"
    elif default is not None:
        n = args.get("num_thresholds", default)
        arg = f"num_thresholds={n}"
    else:
        return None
    if not _count(n):
        return None
    labels = args.get("num_labels") if name == "AUC" and args.get("multi_label") is True else None
    cells = n * (labels if _count(labels) else 1)
    if _count(labels):
        arg += f" with num_labels={labels}"
    return counters * cells * itemsize, arg, f"{counters} counters of {cells:,} entries"


def _count(n: object) -> TypeGuard[int]:
    """Whether ``n`` is a positive count (an int, not a bool); narrows ``n`` to int for the checker."""
    return isinstance(n, int) and not isinstance(n, bool) and n > 0
