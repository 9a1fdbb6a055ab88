"""The live explorer: an :class:`vae_lib.explorer.Explorer` in a running kernel (JupyterLab, Binder, Colab).

The widget is an anywidget whose front end is the book's one explorer runtime (``explorer_runtime.js``) with a
*kernel engine*: every move of a control sends the controls' values to the kernel (the ``state`` trait), the kernel
runs the explorer's program with torch and the full-precision networks (:meth:`Explorer.evaluate` with
``exact=True``), and the values come back (the ``values`` trait) to be drawn exactly as the static page draws its
own. A button's action (chapter 2's gradient ascent) also runs in the kernel.
"""

from __future__ import annotations

from typing import Any

import anywidget
import torch
import traitlets
from torch import Tensor

from .explorer import Button, Choice, Explorer, Pad, Slider, _jsonable, explorer_runtime

__all__ = ["ExplorerWidget"]

_KERNEL_ENGINE = r"""
function kernelEngine(model) {
  var pendingDraw = null;
  var engine = {
    controls: [],
    update: function (values, data, program, seq, draw) {
      var state = { '#seq': seq };
      values['#sent'] = seq;  // the kernel's answer carries the same '#seq'
      engine.controls.forEach(function (name) {
        var v = values[name];
        state[name] = v && v.d ? Array.from(v.d) : v;
        if ((name + '#index') in values) { state[name + '#index'] = values[name + '#index']; }
      });
      pendingDraw = { values: values, draw: draw };
      engine.merge(values, model.get('values'));
      draw();
      model.set('state', state);
      model.save_changes();
    },
    action: function (c, values) {
      var state = {};
      engine.controls.forEach(function (name) {
        var v = values[name];
        state[name] = v && v.d ? Array.from(v.d) : v;
        if ((name + '#index') in values) { state[name + '#index'] = values[name + '#index']; }
      });
      model.send({ action: c.name, state: state });
    },
    merge: function (values, out) {
      Object.keys(out || {}).forEach(function (k) {
        var v = out[k];
        values[k] = v && v.d ? vaeExplorer.M(v.rows, v.cols, Float64Array.from(v.d)) : v;
      });
    },
    redraw: function () {
      if (!pendingDraw) { return; }
      engine.merge(pendingDraw.values, model.get('values'));
      pendingDraw.draw();
    }
  };
  return engine;
}
export default {
  render: function ({ model, el }) {
    var engine = kernelEngine(model), spec = model.get('spec');
    engine.controls = spec.controls.filter(function (c) { return c.kind !== 'button'; })
      .map(function (c) { return c.name; });
    var explorer = vaeExplorer.render(el, spec, engine);
    model.send({ hello: Math.random() });  // the kernel answers with every value (updates carry only changes)
    var onValues = function () { engine.redraw(); };
    var onMsg = function (msg) { if (msg && msg.set) { explorer.setMany(Object.entries(msg.set)); } };
    model.on('change:values', onValues);
    model.on('msg:custom', onMsg);
    return function () { model.off('change:values', onValues); model.off('msg:custom', onMsg); };
  }
};
"""


def _control_state(explorer: Explorer) -> list[str]:
    return [c.name for c in explorer.controls if isinstance(c, (Slider, Choice, Pad))]


class ExplorerWidget(anywidget.AnyWidget):
    """The live explorer (see the module docstring). ``set(**controls)`` moves controls from Python (tests)."""

    _esm = traitlets.Unicode(explorer_runtime() + _KERNEL_ENGINE).tag(sync=True)
    spec = traitlets.Dict().tag(sync=True)
    state = traitlets.Dict().tag(sync=True)
    values = traitlets.Dict().tag(sync=True)

    def __init__(self, explorer: Explorer) -> None:
        if not isinstance(explorer, Explorer):
            raise TypeError(f"explorer must be a vae_lib.explorer.Explorer, got {type(explorer).__name__}")
        super().__init__(spec=explorer.spec(with_program_data=False))
        self.explorer = explorer
        self._controls = _control_state(explorer)
        self._drawn = _drawn_values(self.spec)
        self._sent: dict[str, Any] = {}  # the last value sent under each name (a tensor unchanged is not resent)
        self._full: dict[str, Any] = {}  # every value as last sent (JSON), for a view that renders later
        self.values = self._compute({})
        self.observe(self._on_state, names="state")
        self.on_msg(self._on_msg)

    def _compute(self, state: dict[str, Any]) -> dict:
        """The values to send for ``state``: numbers, and the drawn values that changed since they were last sent (a
        posterior image changes only with the preset: resending its 121² numbers on every move cost 25 ms)."""
        values = self.explorer.evaluate({k: v for k, v in state.items() if not k.startswith("#")}, exact=True)
        out = {}
        for k, v in values.items():
            if k in self._controls or "#" in k or not (isinstance(v, (int, float, str)) or k in self._drawn):
                continue
            if isinstance(v, Tensor):
                last = self._sent.get(k)
                if last is not None and last.shape == v.shape and torch.equal(last, v):
                    continue
                self._sent[k] = v.clone()
            out[k] = _jsonable(v)
        self._full.update(out)
        out["#seq"] = state.get("#seq", 0)
        return out

    def _on_state(self, change: dict) -> None:
        self.values = self._compute(dict(change["new"]))

    def _on_msg(self, _widget: object, content: dict, _buffers: object) -> None:
        if content.get("hello"):  # a view rendered (again): it needs every value, not only the last changes
            self.values = {**self._full, "#seq": self.values.get("#seq", 0), "#hello": content["hello"]}
            return
        button = next((c for c in self.explorer.controls if isinstance(c, Button) and c.name == content.get("action")),
                      None)
        if button is None or button.action != "ascend":
            return
        self.send({"set": self.ascend(content.get("state", {}))})

    def ascend(self, state: dict) -> dict[str, float]:
        """Run the button's gradient ascent (``vae_lib.posterior_explorer.ascend_elbo``) from ``state``; returns the
        new (μ₁, μ₂, log σ₁, log σ₂) by control name."""
        import torch

        from .explorer import QuadratureELBO
        from .posterior_explorer import ascend_elbo
        from .quadrature import GaussianFitConfig

        op = next(o for o in self.explorer.program if isinstance(o, QuadratureELBO))
        button = next(c for c in self.explorer.controls if isinstance(c, Button) and c.action == "ascend")
        values = self.explorer.initial_state()
        values.update(state)
        q = torch.tensor([float(values[k]) for k in op.q], dtype=torch.float64)
        result = ascend_elbo(op.log_joint[int(values[op.preset])], op.grid, q[:2], q[2:],  # a choice's value: its index
                             GaussianFitConfig(steps=button.settings["steps"],
                                               learning_rate=button.settings["learning_rate"], decay_to=1.0))
        return dict(zip(op.q, [*result.mean.tolist(), *result.log_sigma.tolist()], strict=True))

    def set(self, **controls: Any) -> dict:
        """Move controls from Python as the front end would (tests, benchmarks); returns the new values."""
        state = dict(self.state or {})
        for name, value in controls.items():
            if name not in self._controls:
                raise ValueError(f"{name!r} is not a control of this explorer; controls: {self._controls}")
            state[name] = value
            control = next(c for c in self.explorer.controls if c.name == name)
            if isinstance(control, Choice):
                state[name + "#index"] = value
            if isinstance(control, Slider) and control.snap:
                state[name + "#index"] = int(round((value - control.low) / control.step))
        state["#seq"] = int(state.get("#seq", 0)) + 1
        self.state = state
        return self.values


def _drawn_values(spec: dict) -> set[str]:
    """The values a panel draws (network activations in between are not sent to the front end)."""
    drawn: set[str] = set()
    for p in spec["panels"]:
        drawn.add(p.get("output"))
        drawn.add((p.get("background") or {}).get("output"))
        drawn.add(p.get("ranges"))
        for layer in p.get("layers", []):
            drawn.update([layer.get("output"), layer.get("x"), layer.get("y"), layer.get("colour_by")])
    drawn.discard(None)
    return drawn
