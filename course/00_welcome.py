# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 00 · Welcome to cnnlab
#
# This course is about one question: **how does a convolutional neural network learn?** Not which
# library call trains one, but what actually happens: how the error of a network is measured, how
# its gradient is carried backwards layer by layer, why the starting weights matter so much, how
# over-fitting is held back, and what each classic optimizer does with the gradient it is given.
#
# Everything runs on `cnnlab`, a small training stack written in plain NumPy for this course. You
# can open any layer and read its `forward` and `backward` on one screen, and every gradient it
# computes is checked against finite differences in the test suite. The names follow PyTorch
# (`Conv2d`, `CrossEntropyLoss`, `SGD`, ...), so what you learn here carries straight over.
#
# | lesson | what you will be able to do |
# |---|---|
# | 00 welcome | run a lesson, drive a widget, solve an exercise; meet the data |
# | 01 the training problem | write down the training error E(w); softmax, cross-entropy, activations |
# | 02 back-propagation | run the chain rule through layers by hand, one sample and a batch |
# | 03 Jacobians | see each layer's Jacobian and check that backward is Jᵀ times a vector |
# | 04 convolution layers | derive and verify the gradients of convolution and subsampling |
# | 05 differentiation | compare analytic, numerical, symbolic and automatic derivatives |
# | 06 gradient descent | batch, online and mini-batch; learning rates; momentum |
# | 07 optimizers | race SGD, Nesterov, AdaGrad, AdaDelta, RMSprop and Adam on a saddle |
# | 08 initialisation | watch activations vanish or explode with depth; Xavier, He, LSUV |
# | 09 regularisation | close the gap between training and validation error |
# | 10 a real CNN | train a CNN on Fashion-MNIST and read what it learned |

# %% [markdown]
# ## How a lesson works
#
# * **Run cells in order** with <kbd>Shift</kbd>+<kbd>Enter</kbd>, or *Run → Run All Cells*. A
#   lesson builds up step by step, so a cell may need the ones above it.
# * **Checks.** Many cells end with `assert` statements. They state what the lesson claims ("this
#   gradient matches finite differences", "the loss went down"). A cell that runs silently has
#   just confirmed the claim; the same checks run in the course's automated tests.
# * **Widgets** are small interactive figures: sliders, menus and buttons that recompute what you
#   see. They need `%matplotlib widget`, which the next cell switches on.
# * **Exercises** come in three cells: an *exercise* cell where you write code (it starts with
#   `...`), a collapsed *solution* cell (open it only after trying), and a *self-check* cell that
#   tells you in one line what is still wrong, or confirms you are right.

# %%
# %matplotlib widget
import matplotlib.pyplot as plt
import numpy as np

import widgets
from cnnlab.data import load_fashion_mnist

# %% [markdown]
# ## The data: Fashion-MNIST
#
# Throughout the course the networks learn to recognise **Fashion-MNIST** images (Zalando Research,
# MIT licence): 28 × 28 grey-scale photographs of clothing in ten classes, 60,000 for training and
# 10,000 for testing. The repository ships a class-balanced subset of it so that every lesson works
# on a fresh machine; when the full set is installed (for example Debian's `dataset-fashion-mnist`
# package), the same call returns the full set instead.
#
# Images come in the layout every layer of the course expects, `(N, C, H, W)`: N images, C = 1
# channel, H × W = 28 × 28 pixels, as `float32` values between 0 (background) and 1 (ink).
# Labels are integers 0 to 9 that index the class names.

# %%
X, y, classes = load_fashion_mnist("train")
X_test, y_test, _ = load_fashion_mnist("test")
print(f"training images {X.shape} {X.dtype}, labels {y.shape} {y.dtype}")
print(f"test images     {X_test.shape}")
print("classes:", ", ".join(f"{k} {name}" for k, name in enumerate(classes)))

# %%
assert X.shape[1:] == (1, 28, 28) and X.dtype == np.float32
assert y.shape == (len(X),) and y.dtype == np.int64
assert 0.0 <= X.min() and X.max() <= 1.0
assert len(classes) == 10 and set(np.unique(y)) == set(range(10))

# %% [markdown]
# A **class-balanced** set has the same number of examples of every class, so a network that
# guessed one class all the time would be right only 10% of the time: that is the chance level
# every result in the course should beat. Count the labels:

# %%
counts = np.bincount(y, minlength=10)
print(dict(zip(classes, counts.tolist())))
assert counts.min() == counts.max(), "every class has the same number of training images"
chance = 1 / len(classes)

# %% [markdown]
# ## A first look
#
# One example of each class. Note how little separates some of them at this resolution: a shirt,
# a pullover and a coat are all a torso with two sleeves.

# %%
first_of_each = [np.flatnonzero(y == k)[0] for k in range(10)]
with plt.ioff():
    fig, axes = plt.subplots(1, 10, figsize=(10, 1.6))
for ax, i in zip(axes, first_of_each):
    ax.imshow(X[i, 0], cmap="gray_r", vmin=0, vmax=1)
    ax.set_title(classes[y[i]], fontsize=8)
    ax.axis("off")
fig

# %% [markdown]
# ## Your first widget: the dataset gallery
#
# Pick a class in the menu and drag the slider to page through its examples. The panel on the
# right is the **mean image** of the chosen class: the average of all its pictures, pixel by
# pixel. Look at how blurry the means of shirts, pullovers and coats are compared with trousers
# or bags: the more a class varies, the less its average looks like any one example.

# %%
gallery = widgets.dataset_gallery(X, y, classes)
gallery

# %% [markdown]
# Every widget in the course can also be driven from code. The next cell does what you would do
# with the mouse, choosing *Trouser*, and checks that the gallery reacted.

# %%
trouser = classes.index("Trouser")
gallery.class_picker.value = trouser
assert gallery.model.count == counts[trouser]
assert (gallery.model.labels == trouser).all(), "only trousers are shown"
gallery.start.value = 5
assert gallery.model.indices[0] == np.flatnonzero(y == trouser)[5]

# %% [markdown]
# ## Warm-up exercise: the mean image of every class
#
# Compute `class_means`, an array of shape `(10, 28, 28)` whose entry `k` is the average of all
# training images with label `k` (the right-hand panel of the gallery, for all ten classes at
# once). Hint: `X[y == k]` selects the images of class `k`; `.mean(axis=0)` averages them.

# %% tags=["exercise"]
class_means = ...  # your code here

# %% jupyter={"source_hidden": true} nbgrader={"grade": false, "grade_id": "00-class-means-solution", "locked": false, "schema_version": 3, "solution": true, "task": false} tags=["solution"]
class_means = np.stack([X[y == k, 0].mean(axis=0) for k in range(10)])

# %% nbgrader={"grade": true, "grade_id": "00-class-means-check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from checks.welcome import check_class_means

check_class_means(class_means, X, y)

# %% [markdown]
# ## A first classifier, without any training
#
# The ten mean images are already a classifier: give a new image the label of the mean it is
# closest to (in squared Euclidean distance, summed over the 784 pixels). Nothing here was
# *learned* by gradient descent, so it makes a useful baseline: every network in the course has to
# do better than this.
#
# For a test image **x** and a mean **m**, ‖x − m‖² = ‖x‖² − 2 x·m + ‖m‖², which lets one matrix
# product compare every test image with every mean.

# %%
flat_test = X_test.reshape(len(X_test), -1).astype(np.float64)
flat_means = class_means.reshape(10, -1)
distances = (flat_test**2).sum(1, keepdims=True) - 2 * flat_test @ flat_means.T + (flat_means**2).sum(1)
predicted = distances.argmin(axis=1)
accuracy = (predicted == y_test).mean()
print(f"nearest-mean accuracy on {len(y_test)} test images: {accuracy:.1%} (chance: {chance:.0%})")

# %%
assert accuracy > 4 * chance, "the class means already carry real information about the classes"

# %% [markdown]
# Where does it go wrong? The **confusion matrix** counts, for each true class (row), how often
# each class was predicted (column). The diagonal holds the correct answers.

# %%
confusion = np.zeros((10, 10), dtype=int)
np.add.at(confusion, (y_test, predicted), 1)
with plt.ioff():
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
ax.imshow(confusion, cmap="Blues")
ax.set_xticks(range(10), classes, rotation=60, ha="right", fontsize=8)
ax.set_yticks(range(10), classes, fontsize=8)
ax.set_xlabel("predicted"), ax.set_ylabel("true")
fig.tight_layout()
fig

# %%
per_class = confusion.diagonal() / confusion.sum(axis=1)
worst = classes[per_class.argmin()]
print("accuracy per class:", {c: f"{a:.0%}" for c, a in zip(classes, per_class)})
print("hardest class for this baseline:", worst)
assert confusion.sum() == len(y_test)
assert per_class[classes.index("Trouser")] > per_class[classes.index("Shirt")], \
    "trousers are easy to tell from their mean; shirts are not"

# %% [markdown]
# ## What comes next
#
# A template per class can only go so far: it cannot notice a collar, a heel or a strap unless the
# average happens to contain it. A convolutional network learns its own templates (filters), many
# per layer and layered on top of each other, by gradient descent on a training error. Lesson 01
# writes that error down.
