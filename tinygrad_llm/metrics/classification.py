"""Classification metrics: accuracy, confusion matrix, precision, recall, F-beta.

Per class c, counting over the N samples:

    TP_c = #{i : pred_i = c and true_i = c}
    FP_c = #{i : pred_i = c and true_i != c}
    FN_c = #{i : pred_i != c and true_i = c}
    precision_c = TP_c / (TP_c + FP_c)
    recall_c    = TP_c / (TP_c + FN_c)
    F_beta,c    = (1 + b^2) TP_c / ((1 + b^2) TP_c + b^2 FN_c + FP_c)
                = (1 + b^2) P R / (b^2 P + R)            (F1: b = 1, harmonic mean of P, R)

Averages (scikit-learn's names and semantics):

- ``None``: one value per class (in ``labels`` order);
- ``"macro"``: unweighted mean over classes;
- ``"weighted"``: mean weighted by support (number of true samples of the class);
- ``"micro"``: pool TP, FP, FN over classes first (for single-label data over all classes,
  micro precision = micro recall = micro F1 = accuracy);
- ``"binary"``: the class ``pos_label`` only.

``zero_division`` is the value of a 0/0 ratio (precision with no predicted positives, recall
with no true positives, F when both are 0): ``"warn"`` (0, with an UndefinedMetricWarning),
0, 1 or ``np.nan`` (which macro/weighted averages then skip).
"""
import warnings

import numpy as np


class UndefinedMetricWarning(UserWarning):
    """A metric had a 0/0 ratio and was set to ``zero_division``."""


def _check_pair(y_true, y_pred):
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.ndim != 1 or y_pred.ndim != 1:
        raise ValueError(f"y_true and y_pred must be 1-D, got shapes {y_true.shape} and "
                         f"{y_pred.shape}")
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} samples but y_pred has {len(y_pred)}")
    if len(y_true) == 0:
        raise ValueError("y_true and y_pred are empty")
    return y_true, y_pred


def accuracy(y_true, y_pred, *, ignore_index=None, normalize=True):
    """Fraction of positions where ``y_pred == y_true``: ``(1/N) sum_i [pred_i = true_i]``.

    ``y_pred`` may also be scores of shape ``y_true.shape + (C,)``: they are argmax-ed over
    the last axis. Positions where ``y_true == ignore_index`` (e.g. -100 padding) are left
    out. ``normalize=False`` returns the count of correct positions.
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_pred.ndim == y_true.ndim + 1:
        y_pred = y_pred.argmax(axis=-1)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true shape {y_true.shape} does not match y_pred shape "
                         f"{y_pred.shape}")
    keep = np.ones(y_true.shape, dtype=bool) if ignore_index is None else y_true != ignore_index
    n = int(keep.sum())
    if n == 0:
        raise ValueError("accuracy of zero samples is undefined (empty input or all ignored)")
    correct = int(((y_true == y_pred) & keep).sum())
    return correct / n if normalize else correct


def _labels(y_true, y_pred, labels):
    if labels is None:
        return np.unique(np.concatenate([y_true, y_pred]))
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) == 0:
        raise ValueError(f"labels must be a non-empty 1-D list, got {labels!r}")
    return labels


def confusion_matrix(y_true, y_pred, *, labels=None, normalize=None):
    """``C[i, j]`` = number of samples of true class ``labels[i]`` predicted as ``labels[j]``.

    Rows are true classes, columns predicted (scikit-learn's layout). ``labels`` defaults to
    the sorted union of both inputs; samples whose classes are not in ``labels`` are not
    counted. ``normalize``: ``"true"`` (rows sum to 1), ``"pred"`` (columns), ``"all"``.
    """
    y_true, y_pred = _check_pair(y_true, y_pred)
    labels = _labels(y_true, y_pred, labels)
    index = {lab.item() if hasattr(lab, "item") else lab: k for k, lab in enumerate(labels)}
    ti = np.array([index.get(v.item() if hasattr(v, "item") else v, -1) for v in y_true])
    pi = np.array([index.get(v.item() if hasattr(v, "item") else v, -1) for v in y_pred])
    keep = (ti >= 0) & (pi >= 0)
    L = len(labels)
    cm = np.bincount(ti[keep] * L + pi[keep], minlength=L * L).reshape(L, L)
    if normalize is None:
        return cm
    with np.errstate(invalid="ignore", divide="ignore"):
        if normalize == "true":
            out = cm / cm.sum(axis=1, keepdims=True)
        elif normalize == "pred":
            out = cm / cm.sum(axis=0, keepdims=True)
        elif normalize == "all":
            out = cm / cm.sum()
        else:
            raise ValueError(f"normalize must be None, 'true', 'pred' or 'all', got "
                             f"{normalize!r}")
    return np.nan_to_num(out)


def _divide(num, den, zero_division, what):
    """num / den elementwise, with ``zero_division`` where den == 0."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    zero = den == 0
    if zero_division == "warn":
        if zero.any():
            warnings.warn(f"{what} is ill-defined (0/0) for some classes and set to 0.0; "
                          "pass zero_division= to choose the value", UndefinedMetricWarning,
                          stacklevel=4)
        value = 0.0
    elif zero_division in (0, 1) or (isinstance(zero_division, float)
                                     and np.isnan(zero_division)):
        value = float(zero_division)
    else:
        raise ValueError(f"zero_division must be 'warn', 0, 1 or np.nan, got "
                         f"{zero_division!r}")
    return np.where(zero, value, num / np.where(zero, 1.0, den))


def precision_recall_fscore_support(y_true, y_pred, *, labels=None, average=None,
                                    pos_label=1, beta=1.0, zero_division="warn"):
    """``(precision, recall, f_beta, support)``, per class or averaged (module docstring).

    Per class (``average=None``) each is an array over ``labels``; averaged ones are floats
    and support is None (scikit-learn's convention).
    """
    y_true, y_pred = _check_pair(y_true, y_pred)
    if beta < 0:
        raise ValueError(f"beta must be >= 0, got {beta}")
    if average == "binary":
        present = np.unique(np.concatenate([y_true, y_pred]))
        if len(present) > 2:
            raise ValueError(f"average='binary' needs binary labels, got classes "
                             f"{present.tolist()}; choose average='macro', 'micro' or "
                             "'weighted'")
        labels = np.asarray([pos_label])
    elif average not in (None, "macro", "micro", "weighted"):
        raise ValueError(f"average must be None, 'binary', 'macro', 'micro' or 'weighted', "
                         f"got {average!r}")
    labels = _labels(y_true, y_pred, labels)
    tp = np.array([np.sum((y_pred == c) & (y_true == c)) for c in labels], dtype=np.float64)
    pred_sum = np.array([np.sum(y_pred == c) for c in labels], dtype=np.float64)
    true_sum = np.array([np.sum(y_true == c) for c in labels], dtype=np.float64)
    if average == "micro":
        tp, pred_sum, true_sum = tp.sum(keepdims=True), pred_sum.sum(keepdims=True), \
            true_sum.sum(keepdims=True)
    b2 = beta * beta
    precision = _divide(tp, pred_sum, zero_division, "precision")
    recall = _divide(tp, true_sum, zero_division, "recall")
    # (1+b^2) TP / ((1+b^2) TP + b^2 FN + FP), with TP+FN = true_sum and TP+FP = pred_sum.
    fscore = _divide((1 + b2) * tp, b2 * true_sum + pred_sum, zero_division, "F-score")
    if average is None:
        return precision, recall, fscore, true_sum.astype(np.int64)
    if average == "weighted":
        if true_sum.sum() == 0:
            value = 0.0 if zero_division == "warn" else float(zero_division)
            return value, value, value, None
        weights = true_sum
    else:
        weights = None
    return (_average(precision, weights), _average(recall, weights),
            _average(fscore, weights), None)


def _average(values, weights):
    """Mean (weighted if given) that skips NaN entries unless all are NaN."""
    ok = ~np.isnan(values)
    if not ok.any():
        return float("nan")
    if weights is None:
        return float(values[ok].mean())
    w = weights[ok]
    return float((values[ok] * w).sum() / w.sum()) if w.sum() > 0 else float("nan")


def precision(y_true, y_pred, *, labels=None, average="binary", pos_label=1,
              zero_division="warn"):
    """TP / (TP + FP); see :func:`precision_recall_fscore_support`."""
    return precision_recall_fscore_support(y_true, y_pred, labels=labels, average=average,
                                           pos_label=pos_label,
                                           zero_division=zero_division)[0]


def recall(y_true, y_pred, *, labels=None, average="binary", pos_label=1,
           zero_division="warn"):
    """TP / (TP + FN); see :func:`precision_recall_fscore_support`."""
    return precision_recall_fscore_support(y_true, y_pred, labels=labels, average=average,
                                           pos_label=pos_label,
                                           zero_division=zero_division)[1]


def f1_score(y_true, y_pred, *, labels=None, average="binary", pos_label=1,
             zero_division="warn"):
    """2 TP / (2 TP + FP + FN), the harmonic mean of precision and recall."""
    return precision_recall_fscore_support(y_true, y_pred, labels=labels, average=average,
                                           pos_label=pos_label,
                                           zero_division=zero_division)[2]


def fbeta_score(y_true, y_pred, *, beta, labels=None, average="binary", pos_label=1,
                zero_division="warn"):
    """(1 + b^2) TP / ((1 + b^2) TP + b^2 FN + FP): recall counts b times as much."""
    return precision_recall_fscore_support(y_true, y_pred, labels=labels, average=average,
                                           pos_label=pos_label, beta=beta,
                                           zero_division=zero_division)[2]
