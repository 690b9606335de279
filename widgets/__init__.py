"""widgets: the course's visualiser, built on cnnlab (never the reverse).

Each widget is a model object that computes (and can be driven without a browser), a view (the
ipywidgets layout around it, a `widgets._view.WidgetView`) and a factory function. A widget shows
errors as a status line, never as a traceback.
"""
from widgets._new_figure import install_figure_hook
from widgets.backprop_stepper import backprop_stepper
from widgets.cnn_race import cnn_race
from widgets.conv_explorer import conv_explorer
from widgets.filter_viewer import filter_viewer
from widgets.gallery import dataset_gallery
from widgets.gradcheck_table import gradcheck_table
from widgets.init_explorer import init_explorer
from widgets.jacobian_viewer import jacobian_viewer
from widgets.loss_explorer import loss_explorer
from widgets.lr_explorer import lr_explorer
from widgets.momentum_explorer import momentum_explorer
from widgets.optimizer_race import optimizer_race
from widgets.regularization_explorer import regularization_explorer
from widgets.step_size import step_size_explorer
from widgets.training_dashboard import training_dashboard

__all__ = ["backprop_stepper", "cnn_race", "conv_explorer", "dataset_gallery", "filter_viewer", "gradcheck_table",
           "init_explorer", "jacobian_viewer", "loss_explorer", "lr_explorer", "momentum_explorer", "optimizer_race",
           "regularization_explorer", "step_size_explorer", "training_dashboard"]

install_figure_hook()  # every ipympl figure sends PNG frames (see widgets._new_figure.send_png_frames_only)
