# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lecture demos
#
# Every widget of the course, one section per lecture topic, ready for a projector: large fonts
# and a **preset** menu above each widget with a few named set-ups worth showing. Pick a preset,
# then drive the widget by hand as in the lessons.
#
# **Present it:** `make present` serves this notebook with Voilà as a dashboard (only the
# widgets and these notes, no code) and prints the address to open. In JupyterLab, *Run All* works
# too.
#
# **Add a preset:** the presets are data, in `widgets/lecture_presets.json`: under the widget's
# entry, add a name and the keyword arguments of the widget's function (for example
# `"lrs": {"SGD": 0.05}` for the optimizer race). A new widget needs an entry there and a section
# here.
#
# | topic | widget | lesson |
# |---|---|---|
# | the data | dataset gallery | 00 |
# | the training problem | loss explorer | 01 |
# | back-propagation | back-propagation stepper | 02 |
# | Jacobians | Jacobian viewer | 03 |
# | convolution layers | convolution explorer | 04 |
# | differentiation | step-size explorer, gradient-check table | 05 |
# | gradient descent | learning-rate explorer | 06 |
# | optimizers | optimizer race, the race on a CNN | 07 |
# | initialisation | initialisation explorer | 08 |
# | regularisation | regularisation explorer | 09 |
# | a CNN, start to finish | training dashboard, filter viewer | 10 |

# %%
# %matplotlib widget
from widgets import lecture

presets = lecture.load_presets()
demos = {}

# %% [markdown]
# ## The data: Fashion-MNIST
#
# Page through one class, and compare the class means on the right: trousers and bags give sharp
# means, shirts, pullovers and coats blurred ones, because those classes vary more.

# %%
demos["dataset_gallery"] = lecture.demo("dataset_gallery", presets=presets)
demos["dataset_gallery"]

# %% [markdown]
# ## The training problem: softmax and the loss
#
# Start from *confidently wrong*: the target's probability is almost 0, cross-entropy's gradient on
# the target logit is close to −1, and the squared error's gradient has all but vanished. Then drag
# the target's logit up: the squared error's gradient wakes up only once the target's probability
# is no longer tiny, and both gradients fade as the prediction becomes right.

# %%
demos["loss_explorer"] = lecture.demo("loss_explorer", presets=presets)
demos["loss_explorer"]

# %% [markdown]
# ## Back-propagation
#
# Step forward through the net, then backward: every sensitivity comes from the layer above it.
# Then move the sample slider and watch the running average of per-sample gradients (Algorithm 1)
# approach the gradient of the whole batch.

# %%
demos["backprop_stepper"] = lecture.demo("backprop_stepper", presets=presets)
demos["backprop_stepper"]

# %% [markdown]
# ## Jacobians
#
# Pick a layer: a ReLU's Jacobian is diagonal, a convolution's banded with repeated weights, a
# max-pool's a 0/1 selection. The badge says whether each matrix agrees with finite differences.

# %%
demos["jacobian_viewer"] = lecture.demo("jacobian_viewer", presets=presets)
demos["jacobian_viewer"]

# %% [markdown]
# ## Convolution layers
#
# Move the output position: the input patch it reads is framed, and its δ sends a copy of the
# kernel back to exactly that patch of ∂L/∂x. Then change stride and padding and check the output
# size against OH = (H + 2p − K) // s + 1.

# %%
demos["conv_explorer"] = lecture.demo("conv_explorer", presets=presets)
demos["conv_explorer"]

# %% [markdown]
# ## Four ways to differentiate: finite differences
#
# The error of a finite difference falls with the step h until round-off takes over. Switch to
# float32 and the best step grows by orders of magnitude, and so does the smallest error.

# %%
demos["step_size_explorer"] = lecture.demo("step_size_explorer", presets=presets)
demos["step_size_explorer"]

# %% [markdown]
# A gradient check, layer by layer: the buggy presets fail in exactly one layer; in float32 even the
# correct layers fail the float64 tolerance, which is why checks run in float64.

# %%
demos["gradcheck_table"] = lecture.demo("gradcheck_table", presets=presets)
demos["gradcheck_table"]

# %% [markdown]
# ## Gradient descent: the learning rate
#
# A small network trains on a Fashion-MNIST sample while you watch. At 0.1 the error falls
# steadily; at 0.001 it hardly moves; at 3 it ends above where it started. Then change the batch
# size: online training (batch 1) makes many noisy updates per epoch, the full batch only one.

# %%
demos["lr_explorer"] = lecture.demo("lr_explorer", presets=presets)
demos["lr_explorer"]

# %% [markdown]
# ## Momentum, analysed
#
# The error of a run on a quadratic, split by eigen-direction. Gradient descent at its best rate
# still crawls along the flattest direction; momentum at its best pair brings every direction down at
# the same pace, about $\sqrt\kappa$ times fewer steps.

# %%
demos["momentum_explorer"] = lecture.demo("momentum_explorer", presets=presets)
demos["momentum_explorer"]

# %% [markdown]
# ## Optimizers: the race
#
# Same start, same surface, one real `cnnlab.optim` optimizer per runner. On the saddle, plain SGD
# creeps away from the ridge y = 0, while momentum and Nesterov overshoot the valley floor x = 0
# and run off downhill long before it. Move the momentum slider, the learning rates or the start,
# and the race reruns.

# %%
demos["optimizer_race"] = lecture.demo("optimizer_race", presets=presets)
demos["optimizer_race"]

# %% [markdown]
# The same optimizers on a real CNN: press **Race**. Every run starts from the same weights and sees
# the same mini-batches, so the curves differ only by the optimizer and its learning rate.

# %%
demos["cnn_race"] = lecture.demo("cnn_race", presets=presets)
demos["cnn_race"]

# %% [markdown]
# ## Initialisation
#
# Twenty layers with ReLU: Xavier's variance halves the signal at every layer and the activations of
# the last layer all but vanish; He's initialisation doubles the variance to make up for ReLU and
# keeps them at the same scale. Then move the depth, or switch to weights of a fixed scale.

# %%
demos["init_explorer"] = lecture.demo("init_explorer", presets=presets)
demos["init_explorer"]

# %% [markdown]
# ## Regularisation
#
# Without regularisation, the training loss falls far below the validation loss: the net memorises
# its small training set. Dropout, L2 or augmentation narrow that gap; compare with the grey
# reference run.

# %%
demos["regularization_explorer"] = lecture.demo("regularization_explorer", presets=presets)
demos["regularization_explorer"]

# %% [markdown]
# ## A CNN, start to finish
#
# Press **Train**: the loss and accuracy curves, the filters and the feature maps are redrawn as the
# CNN learns, and the learning rate can be changed while it runs.

# %%
demos["training_dashboard"] = lecture.demo("training_dashboard", presets=presets)
demos["training_dashboard"]

# %% [markdown]
# What the filters of a trained CNN respond to: its filters, the feature maps they compute on an
# image, and the gradients of a class score with respect to those maps.

# %%
demos["filter_viewer"] = lecture.demo("filter_viewer", presets=presets)
demos["filter_viewer"]

# %%
missing = sorted(set(presets) - set(demos))
assert not missing, f"demos in widgets/lecture_presets.json without a section here: {missing}"
