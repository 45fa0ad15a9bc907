"""Ordering a repository's files and cutting it into parts that fit the context budget.

- :func:`dependency_order`: what a file imports comes before it. Strongly connected components (import cycles) are
  found with Tarjan's algorithm; the condensed graph is ordered with Kahn's algorithm, ties by path; inside a cycle the
  files are in the post-order of a depth-first walk from the first path (imports first, following imports in path
  order), so only the walk's back edges point forward: each is a *broken cycle edge*, counted.
- :func:`split_parts`: the weakly connected components of the import graph (independent subgraphs) packed greedily,
  in document order, into parts within the budget; a component larger than the budget is cut along the order, so a
  file's imports are in its own part or an earlier one.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence


def strongly_connected_components(nodes: Sequence[str], edges: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (repositories can have import chains deeper than Python's recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return components


def dependency_order(nodes: Sequence[str], edges: Mapping[str, Iterable[str]]) -> tuple[list[str], int]:
    """(files in dependency order, number of broken cycle edges). ``edges[a]`` holds the files ``a`` imports."""
    node_set = set(nodes)
    edges = {node: {t for t in edges.get(node, ()) if t in node_set and t != node} for node in nodes}
    components = strongly_connected_components(sorted(nodes), edges)
    component_of = {member: i for i, component in enumerate(components) for member in component}
    depends_on: list[set[int]] = [set() for _ in components]
    dependents: list[set[int]] = [set() for _ in components]
    for source, targets in edges.items():
        for target in targets:
            a, b = component_of[source], component_of[target]
            if a != b:
                depends_on[a].add(b)
                dependents[b].add(a)
    components = [_cycle_order(component, edges) for component in components]
    waiting = [len(d) for d in depends_on]
    ready = [(min(components[i]), i) for i in range(len(components)) if waiting[i] == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, i = heapq.heappop(ready)
        order.extend(components[i])
        for j in dependents[i]:
            waiting[j] -= 1
            if waiting[j] == 0:
                heapq.heappush(ready, (min(components[j]), j))
    position = {node: i for i, node in enumerate(order)}
    broken = sum(1 for source, targets in edges.items() for target in targets if position[target] > position[source])
    return order, broken


def _cycle_order(component: list[str], edges: Mapping[str, set[str]]) -> list[str]:
    """Members of one strongly connected component, imports first: depth-first post-order from the first path."""
    if len(component) == 1:
        return component
    members = set(component)
    seen: set[str] = set()
    order: list[str] = []
    for root in component:  # sorted
        if root in seen:
            continue
        seen.add(root)
        work = [(root, iter(sorted(edges[root] & members)))]
        while work:
            node, children = work[-1]
            child = next((c for c in children if c not in seen), None)
            if child is None:
                work.pop()
                order.append(node)
            else:
                seen.add(child)
                work.append((child, iter(sorted(edges[child] & members))))
    return order


def weak_components(order: Sequence[str], edges: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The weakly connected components, each in ``order``, listed by their first file's position."""
    parent = {node: node for node in order}

    def find(node: str) -> str:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for source, targets in edges.items():
        for target in targets:
            if source in parent and target in parent:
                a, b = find(source), find(target)
                if a != b:
                    parent[b] = a
    groups: dict[str, list[str]] = {}
    for node in order:
        groups.setdefault(find(node), []).append(node)
    return list(groups.values())


def split_parts(
    order: Sequence[str], edges: Mapping[str, Iterable[str]], cost: Mapping[str, int], budget: int
) -> list[list[str]]:
    """Parts of ``order`` whose summed ``cost`` is within ``budget`` (every single cost must already fit)."""
    parts: list[list[str]] = []
    current: list[str] = []
    used = 0
    for component in weak_components(order, edges):
        size = sum(cost[node] for node in component)
        if used + size <= budget:
            current.extend(component)
            used += size
            continue
        if current:
            parts.append(current)
            current, used = [], 0
        for node in component:  # fits whole in a fresh part, or is cut along the order
            if used + cost[node] > budget:
                parts.append(current)
                current, used = [], 0
            current.append(node)
            used += cost[node]
    if current:
        parts.append(current)
    return parts
