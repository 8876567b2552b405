"""Stage 6, plot: a :class:`~netspec.graph.Graph` -> an SVG or PNG picture (pure Python layout)."""

from ..errors import PlotError
from .render import check_size, picture, render_file, to_png, to_svg

__all__ = ["PlotError", "check_size", "picture", "render_file", "to_png", "to_svg"]
