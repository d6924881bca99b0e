"""Pictures and exports of the circuit graph (``microcircuit describe --draw/--graph``)."""

from __future__ import annotations

from pathlib import Path

import networkx as nx

from microcircuit.circuit import Circuit

COMPARTMENT_COLOURS = {"basal": "#1f77b4", "apical": "#d62728", "dendrite": "#2ca02c", "soma": "#9467bd"}


def graphml_ready(graph: nx.MultiDiGraph) -> nx.MultiDiGraph:
    """A copy whose attributes GraphML can store (str, int, float, bool)."""
    g = graph.copy()
    for _, data in g.nodes(data=True):
        for k, v in list(data.items()):
            if not isinstance(v, (str, int, float, bool)):
                data[k] = str(v)
    for _, _, data in g.edges(data=True):
        for k, v in list(data.items()):
            if not isinstance(v, (str, int, float, bool)):
                data[k] = str(v)
    return g


def layout(circuit: Circuit) -> dict[str, tuple[float, float]]:
    """Areas stacked bottom (input) to top (output); interneurons to the right of their area."""
    level = {circuit.input_population: 0}
    for k, q in enumerate(circuit.forward_chain, start=1):
        level[q.target] = k
    pos = {name: (0.0, float(k)) for name, k in level.items()}
    others = [n for n in circuit.populations if n not in level]
    for i, name in enumerate(others):
        sources = [q.source for q in circuit.into(name) if q.source in level and q.compartment != "soma"]
        y = float(level[sources[0]]) + 0.5 if sources else float(i)
        pos[name] = (1.2, y)
    return pos


def draw_circuit(circuit: Circuit, path: Path) -> None:
    """Draw populations (node size ~ neurons) and projections coloured by target compartment to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    g = circuit.graph
    pos = layout(circuit)
    fig, ax = plt.subplots(figsize=(6, 1.6 + 1.4 * (circuit.depth + 1)))
    sizes = [1200 + 40 * min(g.nodes[n]["size"], 60) for n in g.nodes]
    colours = ["#dddddd" if g.nodes[n]["cell"] == "input" else
               "#fdd49e" if g.nodes[n]["cell"] == "interneuron" else "#c6dbef" for n in g.nodes]
    nx.draw_networkx_nodes(g, pos, ax=ax, node_size=sizes, node_color=colours, edgecolors="black")
    nx.draw_networkx_labels(g, pos, ax=ax, labels={n: f"{n}\n({g.nodes[n]['size']})" for n in g.nodes},
                            font_size=8)
    for i, (u, v, data) in enumerate(g.edges(data=True)):
        nx.draw_networkx_edges(g, pos, ax=ax, edgelist=[(u, v)], edge_color=COMPARTMENT_COLOURS[data["compartment"]],
                               connectionstyle=f"arc3,rad={0.15 + 0.05 * (i % 3)}", arrows=True,
                               arrowstyle="-|>", arrowsize=14, width=1.5, nodelist=list(g.nodes),
                               node_size=sizes, style="dashed" if data["kind"] == "nudging" else "solid")
    handles = [Line2D([0], [0], color=c, label=f"to {k}" + (" (nudging)" if k == "soma" else ""))
               for k, c in COMPARTMENT_COLOURS.items()]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    ax.set_title(f"{circuit.spec.name}: populations (neurons) and projections")
    ax.axis("off")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
