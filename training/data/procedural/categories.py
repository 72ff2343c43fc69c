"""Procedural man-made objects built from parts, with real variety per category.

Every generator takes a numpy Generator and returns a list of `Part`s in metres, in the
object frame (+Z up, front towards -Y: a chair's back stands at +Y). Each part is a closed
mesh, so the assembled shape is watertight.
"""

from __future__ import annotations

import math

import numpy as np

from training.data.procedural.parts import (
    Palette,
    Part,
    box,
    capsule,
    cone,
    cylinder,
    lathe,
    sphere,
    torus,
)

__all__ = ["GENERATORS", "CATEGORIES"]


def _u(rng, lo, hi):
    return float(rng.uniform(lo, hi))


def _four_legs(rng, half_w, half_d, height, thickness, color, round_legs, splay=0.0):
    parts = []
    for sx in (-1, 1):
        for sy in (-1, 1):
            top = np.array([sx * (half_w - thickness), sy * (half_d - thickness), height])
            bottom = top + np.array([sx * splay, sy * splay, -height])
            if round_legs:
                parts.append(cylinder(bottom, top, thickness / 2.0, color, sections=12))
            else:
                center = (top + bottom) / 2.0
                parts.append(box(center, (thickness, thickness, height), color))
    return parts


def chair(rng: np.random.Generator) -> list[Part]:
    pal = Palette(rng)
    frame = pal.pick(Palette.WOOD if rng.random() < 0.6 else Palette.METAL)
    fabric = pal.pick(Palette.FABRIC)
    width, depth = _u(rng, 0.4, 0.55), _u(rng, 0.38, 0.52)
    seat_h, seat_t = _u(rng, 0.4, 0.5), _u(rng, 0.03, 0.09)
    back_h = _u(rng, 0.3, 0.55)
    parts: list[Part] = []
    base = rng.choice(
        ["four", "four_round", "swivel", "sled", "cantilever", "pedestal"],
        p=[0.3, 0.2, 0.15, 0.12, 0.13, 0.1],
    )
    if base == "cantilever":  # one bent tube a side: floor runner, front upright, under the seat
        tube = _u(rng, 0.01, 0.015)
        for sx in (-1, 1):
            x = sx * (width / 2 - 0.03)
            front, back = -depth / 2 - _u(rng, 0.0, 0.04), depth / 2 - 0.02
            parts.append(cylinder((x, back, tube), (x, front, tube), tube, frame))
            parts.append(cylinder((x, front, tube), (x, -depth / 2 + 0.03, seat_h), tube, frame))
            parts.append(
                cylinder(
                    (x, -depth / 2 + 0.03, seat_h - 0.02), (x, back, seat_h - 0.02), tube, frame
                )
            )
    elif base == "pedestal":
        parts.append(cylinder((0, 0, 0.02), (0, 0, seat_h), _u(rng, 0.025, 0.045), frame))
        parts.append(cylinder((0, 0, 0), (0, 0, 0.025), _u(rng, 0.18, 0.26), frame, 32))
    elif base == "swivel":
        column = _u(rng, 0.02, 0.035)
        parts.append(cylinder((0, 0, 0.06), (0, 0, seat_h), column, pal.pick(Palette.METAL)))
        spokes = int(rng.integers(4, 6))
        reach = _u(rng, 0.25, 0.32)
        for k in range(spokes):
            a = 2 * math.pi * k / spokes + _u(rng, 0, 0.3)
            tip = np.array([reach * math.cos(a), reach * math.sin(a), 0.05])
            parts.append(box(tip / 2 + [0, 0, 0.03], (reach, 0.04, 0.035), frame, rotate_z=a))
            parts.append(sphere(tip - [0, 0, 0.025], 0.025, (30, 30, 30)))
    elif base == "sled":
        for sx in (-1, 1):
            x = sx * (width / 2 - 0.02)
            parts.append(cylinder((x, -depth / 2, 0.01), (x, depth / 2, 0.01), 0.012, frame))
            parts.append(
                cylinder((x, -depth / 2 + 0.02, 0.01), (x, -depth / 2 + 0.05, seat_h), 0.012, frame)
            )
            parts.append(
                cylinder((x, depth / 2 - 0.02, 0.01), (x, depth / 2 - 0.05, seat_h), 0.012, frame)
            )
    else:
        splay = _u(rng, 0.0, 0.04)
        parts += _four_legs(
            rng,
            width / 2,
            depth / 2,
            seat_h - seat_t / 2,
            _u(rng, 0.03, 0.05),
            frame,
            base == "four_round",
            splay,
        )
    seat_color = fabric if rng.random() < 0.5 else frame
    parts.append(box((0, 0, seat_h), (width, depth, seat_t), seat_color))
    back_y = depth / 2 - 0.02
    tilt = _u(rng, 0.0, 0.2)
    back_style = rng.choice(["panel", "slats", "spindles", "frame", "ladder"])
    back_center_z = seat_h + seat_t / 2 + back_h / 2
    if back_style == "panel":
        parts.append(
            box(
                (0, back_y + math.sin(tilt) * back_h / 2, back_center_z),
                (width, 0.04, back_h),
                seat_color,
                rotate_x=-tilt,
            )
        )
    else:
        for sx in (-1, 1):
            parts.append(
                box((sx * (width / 2 - 0.02), back_y, back_center_z), (0.035, 0.035, back_h), frame)
            )
        parts.append(
            box((0, back_y, seat_h + seat_t / 2 + back_h - 0.03), (width, 0.035, 0.07), frame)
        )
        if back_style == "ladder":  # thin rails, evenly up the posts
            n = int(rng.integers(3, 6))
            for k in range(n):
                z = seat_h + seat_t / 2 + back_h * (k + 0.7) / (n + 0.7)
                parts.append(box((0, back_y, z), (width - 0.04, 0.02, 0.03), frame))
        elif back_style == "slats":
            n = int(rng.integers(2, 4))
            for k in range(n):
                z = seat_h + seat_t / 2 + back_h * (k + 1) / (n + 1.5)
                parts.append(box((0, back_y, z), (width - 0.04, 0.025, 0.05), frame))
        elif back_style == "spindles":
            n = int(rng.integers(3, 7))
            for k in range(n):
                x = -width / 2 + width * (k + 1) / (n + 1)
                parts.append(
                    cylinder(
                        (x, back_y, seat_h + seat_t / 2),
                        (x, back_y, seat_h + seat_t / 2 + back_h - 0.05),
                        0.01,
                        frame,
                    )
                )
        else:
            parts.append(
                box((0, back_y, back_center_z), (width - 0.07, 0.02, back_h * 0.6), fabric)
            )
    if rng.random() < 0.35:
        arm_h = _u(rng, 0.18, 0.25)
        for sx in (-1, 1):
            x = sx * (width / 2 + 0.02)
            parts.append(box((x, 0, seat_h + arm_h), (0.05, depth * 0.9, 0.04), frame))
            parts.append(
                box((x, -depth / 2 + 0.06, seat_h + arm_h / 2), (0.035, 0.035, arm_h), frame)
            )
    return parts


def table(rng: np.random.Generator) -> list[Part]:
    pal = Palette(rng)
    wood = pal.pick(Palette.WOOD if rng.random() < 0.7 else Palette.PAINT)
    leg_color = wood if rng.random() < 0.6 else pal.pick(Palette.METAL)
    height = _u(rng, 0.45, 0.8)
    top_t = _u(rng, 0.025, 0.06)
    top_shape = rng.choice(["rect", "round", "oval"], p=[0.55, 0.3, 0.15])
    parts: list[Part] = []
    if top_shape == "round":
        radius = _u(rng, 0.35, 0.6)
        parts.append(cylinder((0, 0, height - top_t), (0, 0, height), radius, wood, 48))
        half_w = half_d = radius * 0.7
    elif top_shape == "oval":
        radius, stretch = _u(rng, 0.3, 0.5), _u(rng, 1.4, 2.2)
        top = cylinder((0, 0, height - top_t), (0, 0, height), radius, wood, 48)
        top.mesh.apply_scale((stretch, 1.0, 1.0))
        parts.append(top)
        half_w, half_d = radius * stretch * 0.75, radius * 0.7
    else:
        half_w, half_d = _u(rng, 0.4, 1.0), _u(rng, 0.3, 0.5)
        parts.append(box((0, 0, height - top_t / 2), (2 * half_w, 2 * half_d, top_t), wood))
    base = rng.choice(["four", "pedestal", "trestle"], p=[0.5, 0.25, 0.25])
    if base == "four":
        thick = _u(rng, 0.04, 0.07)
        parts += _four_legs(
            rng, half_w, half_d, height - top_t, thick, leg_color, bool(rng.random() < 0.4)
        )
        if rng.random() < 0.3:  # a shelf between the legs
            z = _u(rng, 0.1, 0.35) * height
            parts.append(box((0, 0, z), (2 * half_w - thick, 2 * half_d - thick, 0.02), wood))
        elif rng.random() < 0.5:  # apron
            parts.append(
                box(
                    (0, half_d - thick, height - top_t - 0.05),
                    (2 * half_w - thick, 0.02, 0.08),
                    leg_color,
                )
            )
            parts.append(
                box(
                    (0, -half_d + thick, height - top_t - 0.05),
                    (2 * half_w - thick, 0.02, 0.08),
                    leg_color,
                )
            )
    elif base == "pedestal":
        parts.append(cylinder((0, 0, 0.03), (0, 0, height - top_t), _u(rng, 0.04, 0.08), leg_color))
        if rng.random() < 0.5:
            parts.append(cylinder((0, 0, 0), (0, 0, 0.03), _u(rng, 0.2, 0.3), leg_color, 32))
        else:
            for k in range(4):
                a = math.pi / 4 + k * math.pi / 2
                parts.append(
                    box(
                        (0.15 * math.cos(a), 0.15 * math.sin(a), 0.02),
                        (0.3, 0.05, 0.04),
                        leg_color,
                        rotate_z=a,
                    )
                )
    else:
        for sx in (-1, 1):
            x = sx * (half_w * 0.75)
            parts.append(box((x, 0, (height - top_t) / 2), (0.05, 0.06, height - top_t), leg_color))
            parts.append(box((x, 0, 0.025), (0.07, 2 * half_d * 0.8, 0.05), leg_color))
        parts.append(box((0, 0, 0.25), (half_w * 1.5, 0.04, 0.05), leg_color))
    return parts


def sofa(rng: np.random.Generator) -> list[Part]:
    pal = Palette(rng)
    fabric = pal.pick(Palette.FABRIC)
    leg = pal.pick(Palette.WOOD + Palette.METAL)
    width, depth = _u(rng, 1.4, 2.4), _u(rng, 0.8, 1.0)
    seat_h, leg_h = _u(rng, 0.38, 0.45), _u(rng, 0.04, 0.15)
    back_h, arm_h = _u(rng, 0.35, 0.5), _u(rng, 0.15, 0.3)
    arm_w = _u(rng, 0.08, 0.22) if rng.random() < 0.85 else 0.0
    parts = _four_legs(
        rng, width / 2 - 0.03, depth / 2 - 0.03, leg_h, 0.05, leg, bool(rng.random() < 0.5)
    )
    base_h = seat_h - leg_h - 0.12
    parts.append(box((0, 0, leg_h + base_h / 2), (width, depth, base_h), fabric))
    n_cushions = int(rng.integers(1, 4))
    inner = width - 2 * arm_w
    for k in range(n_cushions):
        cw = inner / n_cushions
        x = -inner / 2 + cw * (k + 0.5)
        parts.append(box((x, -0.06, seat_h - 0.06), (cw - 0.01, depth - 0.2, 0.12), fabric))
        if rng.random() < 0.6:
            parts.append(
                box(
                    (x, depth / 2 - 0.2, seat_h + back_h * 0.45),
                    (cw - 0.02, 0.14, back_h * 0.8),
                    fabric,
                )
            )
    parts.append(
        box((0, depth / 2 - 0.08, seat_h + back_h / 2 - 0.06), (width, 0.16, back_h + 0.12), fabric)
    )
    if arm_w > 0:
        rounded = rng.random() < 0.4
        for sx in (-1, 1):
            x = sx * (width / 2 - arm_w / 2)
            parts.append(
                box(
                    (x, 0, leg_h + (base_h + arm_h + 0.12) / 2),
                    (arm_w, depth, base_h + arm_h + 0.12),
                    fabric,
                )
            )
            if rounded:
                top = leg_h + base_h + arm_h + 0.12
                parts.append(cylinder((x, -depth / 2, top), (x, depth / 2, top), arm_w / 2, fabric))
    if rng.random() < 0.3:  # L-shaped: a chaise runs forward from one end
        side = 1 if rng.random() < 0.5 else -1
        reach, chaise_w = _u(rng, 0.5, 0.9), inner / n_cushions
        x = side * (width / 2 - arm_w - chaise_w / 2)
        y = -depth / 2 - reach / 2
        parts.append(box((x, y, leg_h + base_h / 2), (chaise_w, reach + 0.02, base_h), fabric))
        parts.append(box((x, y, seat_h - 0.06), (chaise_w - 0.01, reach, 0.12), fabric))
        if arm_w > 0:
            arm_x = side * (width / 2 - arm_w / 2)
            height = base_h + arm_h + 0.12
            parts.append(box((arm_x, y, leg_h + height / 2), (arm_w, reach, height), fabric))
    return parts


def _desk_lamp(rng: np.random.Generator, metal, shade_color) -> list[Part]:
    """A base, two arm segments at angles, and a cone head pointing down and forward."""
    base_r = _u(rng, 0.06, 0.1)
    parts = [cylinder((0, 0, 0), (0, 0, 0.025), base_r, metal, 32)]
    lower, upper = _u(rng, 0.25, 0.4), _u(rng, 0.25, 0.4)
    tilt = _u(rng, 0.1, 0.5)
    elbow = np.array([0.0, lower * math.sin(tilt), 0.025 + lower * math.cos(tilt)])
    reach = _u(rng, -0.3, 0.3)
    wrist = elbow + [0.0, -upper * math.cos(reach), upper * math.sin(reach)]
    parts.append(cylinder((0, 0, 0.025), elbow, 0.01, metal))
    parts.append(cylinder(elbow, wrist, 0.01, metal))
    parts.append(sphere(elbow, 0.018, metal))
    head = _u(rng, 0.05, 0.09)
    parts.append(cone(wrist, wrist + [0, -head * 0.3, -head * 1.2], 0.02, head, shade_color))
    return parts


def _pendant(rng: np.random.Generator, metal, shade_color) -> list[Part]:
    """A ceiling canopy, a cord, and a shade hanging from it."""
    drop = _u(rng, 0.4, 1.2)
    parts = [cylinder((0, 0, drop), (0, 0, drop + 0.03), _u(rng, 0.04, 0.07), metal, 24)]
    shade_h, radius = _u(rng, 0.12, 0.3), _u(rng, 0.1, 0.25)
    parts.append(cylinder((0, 0, shade_h), (0, 0, drop), 0.004, metal, 8))
    style = rng.choice(["dome", "cone", "globe"])
    if style == "dome":
        parts.append(cone((0, 0, shade_h), (0, 0, 0), 0.03, radius, shade_color))
    elif style == "cone":
        parts.append(cone((0, 0, shade_h), (0, 0, 0), radius * 0.3, radius, shade_color))
    else:
        parts.append(sphere((0, 0, radius), radius, shade_color))
    return parts


def lamp(rng: np.random.Generator) -> list[Part]:
    pal = Palette(rng)
    metal = pal.pick(Palette.METAL + Palette.PAINT)
    shade_color = pal.pick(Palette.FABRIC + Palette.PAINT)
    kind = rng.choice(["table", "floor", "desk", "pendant"], p=[0.35, 0.35, 0.18, 0.12])
    if kind == "desk":
        return _desk_lamp(rng, metal, shade_color)
    if kind == "pendant":
        return _pendant(rng, metal, shade_color)
    floor = kind == "floor"
    height = _u(rng, 1.3, 1.8) if floor else _u(rng, 0.35, 0.6)
    parts: list[Part] = []
    base_r = _u(rng, 0.1, 0.18) if floor else _u(rng, 0.06, 0.12)
    base_style = rng.choice(["disc", "box", "vase"])
    if base_style == "disc":
        parts.append(cylinder((0, 0, 0), (0, 0, 0.03), base_r, metal, 32))
        stem_start = 0.03
    elif base_style == "box":
        parts.append(box((0, 0, 0.02), (2 * base_r, 2 * base_r, 0.04), metal))
        stem_start = 0.04
    else:
        vh = height * _u(rng, 0.3, 0.45)
        profile = [(0, 0), (base_r * 0.6, 0), (base_r, vh * 0.4), (base_r * 0.4, vh), (0, vh)]
        parts.append(lathe(profile, pal.pick(Palette.CERAMIC)))
        stem_start = vh
    shade_h = _u(rng, 0.15, 0.3) if floor else _u(rng, 0.12, 0.22)
    if rng.random() < 0.3:  # arched or angled arm
        bend = np.array([_u(rng, 0.1, 0.35), 0, height - shade_h])
        parts.append(cylinder((0, 0, stem_start), (0, 0, height * 0.6), 0.012, metal))
        parts.append(cylinder((0, 0, height * 0.6), bend, 0.012, metal))
        top = bend
    else:
        parts.append(cylinder((0, 0, stem_start), (0, 0, height - shade_h * 0.6), 0.012, metal))
        top = np.array([0, 0, height - shade_h])
    style = rng.choice(["cone", "drum", "globe", "dome"])
    r_bottom = _u(rng, 0.12, 0.25) if floor else _u(rng, 0.08, 0.16)
    if style == "cone":
        parts.append(
            cone(top, top + [0, 0, shade_h], r_bottom, r_bottom * _u(rng, 0.4, 0.8), shade_color)
        )
    elif style == "drum":
        parts.append(cylinder(top, top + [0, 0, shade_h], r_bottom, shade_color, 32))
    elif style == "globe":
        parts.append(sphere(top + [0, 0, r_bottom], r_bottom, shade_color))
    else:
        parts.append(cone(top + [0, 0, shade_h], top, 0.02, r_bottom, shade_color))
    return parts


def bed(rng: np.random.Generator) -> list[Part]:
    pal = Palette(rng)
    wood = pal.pick(Palette.WOOD + Palette.PAINT)
    sheet = pal.pick(Palette.FABRIC)
    width, length = _u(rng, 0.9, 1.8), _u(rng, 1.9, 2.2)
    frame_h, leg_h = _u(rng, 0.15, 0.3), _u(rng, 0.05, 0.2)
    mattress_t = _u(rng, 0.15, 0.3)
    parts = _four_legs(rng, width / 2, length / 2, leg_h, 0.06, wood, False)
    parts.append(box((0, 0, leg_h + frame_h / 2), (width, length, frame_h), wood))
    top = leg_h + frame_h
    parts.append(
        box((0, -0.02, top + mattress_t / 2), (width - 0.06, length - 0.1, mattress_t), sheet)
    )
    head_h = _u(rng, 0.4, 1.0)
    parts.append(
        box((0, length / 2, leg_h + head_h / 2 + 0.1), (width + 0.04, 0.06, head_h + 0.2), wood)
    )
    if rng.random() < 0.5:
        foot_h = _u(rng, 0.1, 0.4)
        parts.append(
            box(
                (0, -length / 2, leg_h + (frame_h + foot_h) / 2),
                (width + 0.04, 0.05, frame_h + foot_h),
                wood,
            )
        )
    pillows = 1 if width < 1.2 else 2
    for k in range(pillows):
        x = 0 if pillows == 1 else (k - 0.5) * width / 2
        parts.append(
            box(
                (x, length / 2 - 0.3, top + mattress_t + 0.06),
                (width / pillows - 0.15, 0.35, 0.12),
                pal.pick(Palette.FABRIC),
            )
        )
    if rng.random() < 0.5:  # folded blanket
        parts.append(
            box(
                (0, -length / 4, top + mattress_t + 0.02),
                (width - 0.04, length / 2, 0.04),
                pal.pick(Palette.FABRIC),
            )
        )
    if width < 1.2 and rng.random() < 0.3:  # bunk: a second bed on corner posts, a ladder
        upper = top + mattress_t + _u(rng, 0.75, 0.95)
        post_top = upper + mattress_t + 0.3
        for sx in (-1, 1):
            for sy in (-1, 1):
                xy = (sx * (width / 2 + 0.03), sy * (length / 2 + 0.03))
                parts.append(box((*xy, post_top / 2), (0.06, 0.06, post_top), wood))
        parts.append(box((0, 0, upper - frame_h / 4), (width, length, frame_h / 2), wood))
        parts.append(
            box((0, 0, upper + mattress_t / 2), (width - 0.06, length - 0.1, mattress_t), sheet)
        )
        parts.append(box((-width / 2 - 0.03, 0, post_top - 0.12), (0.04, length, 0.06), wood))
        ladder_y = -length / 2 + 0.35
        for dy in (-0.18, 0.18):
            parts.append(
                box((width / 2 + 0.06, ladder_y + dy, upper / 2), (0.04, 0.04, upper), wood)
            )
        for k in range(int(upper / 0.3)):
            z = 0.3 * (k + 1)
            parts.append(box((width / 2 + 0.06, ladder_y, z), (0.03, 0.36, 0.03), wood))
    return parts


def cabinet(rng: np.random.Generator) -> list[Part]:
    pal = Palette(rng)
    body = pal.pick(Palette.WOOD + Palette.PAINT)
    width, depth, height = _u(rng, 0.5, 1.4), _u(rng, 0.3, 0.6), _u(rng, 0.6, 2.0)
    t = _u(rng, 0.015, 0.03)
    parts = [
        box((-(width - t) / 2, 0, height / 2), (t, depth, height), body),
        box(((width - t) / 2, 0, height / 2), (t, depth, height), body),
        box((0, 0, t / 2), (width, depth, t), body),
        box((0, 0, height - t / 2), (width, depth, t), body),
        box((0, (depth - t) / 2, height / 2), (width, t, height), body),
    ]
    style = rng.choice(["open", "doors", "glass", "drawers"], p=[0.3, 0.25, 0.15, 0.3])
    shelves = int(rng.integers(1, 6))
    for k in range(shelves):
        z = height * (k + 1) / (shelves + 1)
        parts.append(box((0, 0, z), (width - 2 * t, depth - t, t), body))
    handle = pal.pick(Palette.METAL)
    if style == "doors":
        n = 1 if width < 0.7 else 2
        door_w = width / n
        for k in range(n):
            x = -width / 2 + door_w * (k + 0.5)
            parts.append(
                box((x, -depth / 2 - t / 2, height / 2), (door_w - 0.004, t, height - 0.004), body)
            )
            hx = x + (door_w / 2 - 0.05) * (1 if k == 0 else -1)
            parts.append(box((hx, -depth / 2 - t - 0.01, height / 2), (0.015, 0.02, 0.12), handle))
    elif style == "glass":  # framed doors with a thin pane
        n = 1 if width < 0.7 else 2
        door_w, rail = width / n, _u(rng, 0.03, 0.06)
        for k in range(n):
            x, y = -width / 2 + door_w * (k + 0.5), -depth / 2 - t / 2
            for dx in (-1, 1):
                parts.append(
                    box((x + dx * (door_w - rail) / 2, y, height / 2), (rail, t, height), body)
                )
            for z in (rail / 2, height - rail / 2):
                parts.append(box((x, y, z), (door_w - 2 * rail, t, rail), body))
            pane = (door_w - 2 * rail, t / 4, height - 2 * rail)
            parts.append(box((x, y, height / 2), pane, pal.pick(Palette.GLASS)))
    elif style == "drawers":
        n = max(2, int(height / 0.25))
        for k in range(n):
            z = height * (k + 0.5) / n
            parts.append(
                box((0, -depth / 2 - t / 2, z), (width - 0.004, t, height / n - 0.006), body)
            )
            parts.append(box((0, -depth / 2 - t - 0.01, z), (0.12, 0.02, 0.015), handle))
    base = rng.choice(["floor", "legs", "plinth"], p=[0.45, 0.35, 0.2])
    if base == "legs":
        parts += _four_legs(rng, width / 2, depth / 2, 0.08, 0.04, handle, True)
        for p in parts[:-4]:
            p.mesh.apply_translation([0, 0, 0.08])
    elif base == "plinth":  # a recessed base under the body
        plinth_h = _u(rng, 0.05, 0.12)
        for p in parts:
            p.mesh.apply_translation([0, 0, plinth_h])
        parts.append(box((0, 0.02, plinth_h / 2), (width - 0.04, depth - 0.06, plinth_h), body))
    return parts


def _thin_lathe(outer: list[tuple[float, float]], wall: float, color) -> Part:
    """Open-topped vessel: the outer profile (radius, z) from the base outwards and up, then
    back down inside at ``wall`` thickness to a floor, closed on the axis."""
    inner = [(max(r - wall, 0.0), z) for r, z in reversed(outer[1:])]
    inner[-1] = (inner[-1][0], max(inner[-1][1], wall))
    profile = [(0.0, 0.0)] + outer + inner + [(0.0, inner[-1][1])]
    return lathe(profile, color, sections=40)


def mug(rng: np.random.Generator) -> list[Part]:
    pal = Palette(rng)
    color = pal.pick(Palette.CERAMIC)
    r, h = _u(rng, 0.035, 0.05), _u(rng, 0.08, 0.12)
    bulge = _u(rng, 0.0, 0.01)
    outer = [(r * 0.9, 0.0), (r + bulge, h * 0.5), (r, h)]
    parts = [_thin_lathe(outer, _u(rng, 0.004, 0.007), color)]
    handle_r = h * _u(rng, 0.25, 0.35)
    parts.append(
        torus(
            (r + handle_r * 0.6, 0, h * 0.5), handle_r, _u(rng, 0.005, 0.009), color, axis=(0, 1, 0)
        )
    )
    return parts


def vase(rng: np.random.Generator) -> list[Part]:
    pal = Palette(rng)
    h = _u(rng, 0.2, 0.5)
    radii = [
        _u(rng, 0.04, 0.08),
        _u(rng, 0.05, 0.14),
        _u(rng, 0.03, 0.1),
        _u(rng, 0.02, 0.05),
        _u(rng, 0.03, 0.08),
    ]
    outer = [(radii[k], h * k / (len(radii) - 1)) for k in range(len(radii))]
    return [_thin_lathe(outer, 0.006, pal.pick(Palette.CERAMIC + Palette.GLASS))]


def bottle(rng: np.random.Generator) -> list[Part]:
    pal = Palette(rng)
    h = _u(rng, 0.2, 0.35)
    r = _u(rng, 0.03, 0.05)
    neck_r = r * _u(rng, 0.3, 0.45)
    shoulder = h * _u(rng, 0.5, 0.7)
    profile = [
        (0, 0),
        (r, 0),
        (r, shoulder),
        (neck_r, shoulder + h * 0.15),
        (neck_r, h * 0.95),
        (neck_r * 1.1, h),
        (0, h),
    ]
    parts = [lathe(profile, pal.pick(Palette.GLASS), 32)]
    if rng.random() < 0.7:
        parts.append(cylinder((0, 0, h), (0, 0, h + 0.02), neck_r * 1.15, pal.pick(Palette.METAL)))
    if rng.random() < 0.5:
        parts.append(
            cylinder(
                (0, 0, shoulder * 0.3),
                (0, 0, shoulder * 0.8),
                r * 1.01,
                pal.pick(Palette.PAINT),
                32,
            )
        )
    return parts


def car(rng: np.random.Generator) -> list[Part]:
    """Front of the car faces -Y."""
    pal = Palette(rng)
    paint = pal.pick(Palette.PAINT)
    glass = (40, 50, 60)
    length, width = _u(rng, 3.6, 4.8), _u(rng, 1.6, 1.9)
    wheel_r = _u(rng, 0.3, 0.4)
    body_h = _u(rng, 0.45, 0.7)
    clearance = wheel_r * 0.6
    parts = [box((0, 0, clearance + body_h / 2), (width, length, body_h), paint)]
    cabin_len = length * _u(rng, 0.4, 0.6)
    cabin_h = _u(rng, 0.4, 0.6)
    cabin_y = _u(rng, -0.1, 0.3) * length / 2
    parts.append(
        box(
            (0, cabin_y, clearance + body_h + cabin_h / 2),
            (width * 0.85, cabin_len, cabin_h),
            glass,
        )
    )
    parts.append(
        box(
            (0, cabin_y, clearance + body_h + cabin_h + 0.02),
            (width * 0.86, cabin_len * 0.8, 0.05),
            paint,
        )
    )
    for sy in (-1, 1):
        y = sy * length * 0.32
        for sx in (-1, 1):
            x = sx * (width / 2 - 0.12)
            parts.append(
                cylinder((x - 0.11, y, wheel_r), (x + 0.11, y, wheel_r), wheel_r, (25, 25, 25), 24)
            )
    for sx in (-1, 1):  # headlights at the front
        parts.append(
            box(
                (sx * width * 0.35, -length / 2, clearance + body_h * 0.7),
                (0.25, 0.04, 0.1),
                (240, 240, 220),
            )
        )
    return parts


def airplane(rng: np.random.Generator) -> list[Part]:
    """Nose points to -Y."""
    pal = Palette(rng)
    paint = pal.pick(Palette.PAINT)
    length = _u(rng, 20, 40)
    radius = length * _u(rng, 0.04, 0.06)
    parts = [capsule((0, -length / 2, 0), (0, length / 2, 0), radius, paint)]
    span = length * _u(rng, 0.8, 1.2)
    chord = length * _u(rng, 0.1, 0.18)
    sweep = _u(rng, 0.0, 0.5)
    wing_z = radius * _u(rng, -0.6, 0.6)
    for sx in (-1, 1):
        parts.append(
            box(
                (sx * span / 4, sweep * span / 4, wing_z),
                (span / 2, chord, radius * 0.25),
                paint,
                rotate_z=-sx * sweep * 0.5,
            )
        )
        if rng.random() < 0.7:
            parts.append(
                cylinder(
                    (sx * span * 0.18, -chord * 0.3, wing_z - radius * 0.5),
                    (sx * span * 0.18, chord * 0.4, wing_z - radius * 0.5),
                    radius * 0.3,
                    pal.pick(Palette.METAL),
                )
            )
    tail = length / 2 - chord * 0.4
    parts.append(box((0, tail, radius * 1.6), (radius * 0.2, chord * 0.7, radius * 2.4), paint))
    for sx in (-1, 1):
        parts.append(
            box(
                (sx * span * 0.12, tail, radius * 0.3),
                (span * 0.22, chord * 0.5, radius * 0.15),
                paint,
            )
        )
    return parts


GENERATORS = {
    "chair": chair,
    "table": table,
    "sofa": sofa,
    "lamp": lamp,
    "bed": bed,
    "cabinet": cabinet,
    "mug": mug,
    "vase": vase,
    "bottle": bottle,
    "car": car,
    "airplane": airplane,
}
CATEGORIES = tuple(GENERATORS)
