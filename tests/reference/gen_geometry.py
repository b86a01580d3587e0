"""Reference values for data/calvin/geometry.c (tests/test_geometry.c), computed with numpy
the way PyBullet, calvin_env and 3D Diffuser Actor compute them, written without looking at
the C code:

  - view matrix: PyBullet's computeViewMatrix (gluLookAt, column-major 16 floats);
    projection: computeProjectionMatrixFOV.
  - points, 3D Diffuser Actor convention (utils_with_calvin.deproject):
        T_world_cam = inv(view.reshape(4, 4).T)
        x = (u - W // 2) * z / foc, y = -(v - H // 2) * z / foc, z = -z, world = T @ [x y z 1]
  - points, pixel-centre convention: the OpenGL way, from the z-buffer value the renderer
    wrote: ndc = (2(u+0.5)/W - 1, 1 - 2(v+0.5)/H, 2 zbuf - 1), world = inv(P V) ndc / w, with
    zbuf the inverse of calvin_env's z_buffer_to_real_distance.
  - gripper camera: 4x4 homogeneous transforms world<-tcp (robot_obs) <- hand <- camera link
    from panda_longer_finger.urdf (tcp_joint xyz (0,0,0.14); camera_joint xyz (-0.1,0,0)
    rpy (1.3,0,-1.57)), then calvin_env's computeViewMatrix(p, p + R[:,1], -R[:,2]).
  - rotations: R = Rz Ry Rx as a product of elementary matrices; quaternion (xyzw) from the
    half-angle formula PyBullet's getQuaternionFromEuler uses.

Writes tests/reference/geometry.bin (fixture.py format). Run: python3 tests/reference/gen_geometry.py
"""
import os

import numpy as np
import torch

from fixture import write

rng = np.random.default_rng(1234)
out = {}


def t64(a):
    return torch.from_numpy(np.ascontiguousarray(np.asarray(a, dtype=np.float64)))


def t32(a):
    return torch.from_numpy(np.ascontiguousarray(np.asarray(a, dtype=np.float32)))


def view_matrix(eye, target, up):
    eye, target, up = (np.asarray(x, dtype=np.float64) for x in (eye, target, up))
    f = target - eye
    f = f / np.linalg.norm(f)
    u = up / np.linalg.norm(up)
    s = np.cross(f, u)
    s = s / np.linalg.norm(s)
    u = np.cross(s, f)
    m = np.zeros(16)
    m[0], m[4], m[8] = s
    m[1], m[5], m[9] = u
    m[2], m[6], m[10] = -f
    m[12] = -s @ eye
    m[13] = -u @ eye
    m[14] = f @ eye
    m[15] = 1
    return m


def projection_matrix(fov, aspect, near, far):
    y = 1.0 / np.tan(np.deg2rad(fov) / 2)
    m = np.zeros(16)
    m[0] = y / aspect
    m[5] = y
    m[10] = (far + near) / (near - far)
    m[11] = -1
    m[14] = 2 * far * near / (near - far)
    return m


def deproject_3dda(view, fov, W, H, depth):
    v, u = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    u, v = u.ravel(), v.ravel()
    T = np.linalg.inv(view.reshape(4, 4).T)
    z = depth[v, u].astype(np.float64)
    foc = H / (2 * np.tan(np.deg2rad(fov) / 2))
    x = (u - W // 2) * z / foc
    y = -(v - H // 2) * z / foc
    cam = np.stack([x, y, -z, np.ones_like(z)])
    return (T @ cam)[:3].T.reshape(H, W, 3)


def deproject_ndc(view, proj, W, H, near, far, depth):
    V = view.reshape(4, 4).T
    P = proj.reshape(4, 4).T
    inv = np.linalg.inv(P @ V)
    v, u = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    d = depth.astype(np.float64)
    zbuf = (far - far * near / d) / (far - near)  # inverse of far*near/(far-(far-near)*zbuf)
    ndc = np.stack([2 * (u + 0.5) / W - 1, 1 - 2 * (v + 0.5) / H, 2 * zbuf - 1, np.ones_like(d)], -1)
    w = ndc @ inv.T
    return w[..., :3] / w[..., 3:]


def rx(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def ry(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def rz(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def euler_matrix(e):
    return rz(e[2]) @ ry(e[1]) @ rx(e[0])


def euler_quat_xyzw(e):
    r, p, y = e[0] / 2, e[1] / 2, e[2] / 2
    cr, sr, cp, sp, cy, sy = np.cos(r), np.sin(r), np.cos(p), np.sin(p), np.cos(y), np.sin(y)
    q = np.array([sr * cp * cy - cr * sp * sy, cr * sp * cy + sr * cp * sy,
                  cr * cp * sy - sr * sp * cy, cr * cp * cy + sr * sp * sy])
    return q if q[3] >= 0 else -q


def homog(R, p):
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = p
    return T


# --- static camera (calvin_env conf/cameras/cameras/static.yaml) ---------------------------
S_FROM = [2.871459009488717, -2.166602199425597, 2.555159848480571]
S_AT = [-0.026242351159453392, -0.0302329882979393, 0.3920000493526459]
S_UP = [0.4041403970338857, 0.22629790978217404, 0.8862616969685161]


def camera_case(name, eye, at, up, fov, W, H, near, far, depth, sample):
    view = view_matrix(eye, at, up)
    proj = projection_matrix(fov, W / H, near, far)
    p3 = deproject_3dda(view, fov, W, H, depth)
    pc = deproject_ndc(view, proj, W, H, near, far, depth)
    out[f"{name}.view"] = t64(view)
    out[f"{name}.proj"] = t64(proj)
    out[f"{name}.depth"] = t32(depth)
    idx = np.arange(H * W) if sample is None else rng.choice(H * W, sample, replace=False)
    out[f"{name}.idx"] = torch.from_numpy(idx.astype(np.int64))
    out[f"{name}.pts_3dda"] = t64(p3.reshape(-1, 3)[idx])
    out[f"{name}.pts_center"] = t64(pc.reshape(-1, 3)[idx])
    # projecting a few world points: calvin_env Camera.project (before its floor)
    pts = pc.reshape(-1, 3)[idx[:50]]
    hom = np.concatenate([pts, np.ones((len(pts), 1))], 1)
    clip = hom @ (proj.reshape(4, 4).T @ view.reshape(4, 4).T).T
    ndc = clip[:, :3] / clip[:, 3:]
    out[f"{name}.proj_pts"] = t64(pts)
    out[f"{name}.proj_uv"] = t64(np.stack([(ndc[:, 0] + 1) / 2 * W, (1 - (ndc[:, 1] + 1) / 2) * H], 1))


depth_static = rng.uniform(3.2, 4.6, size=(200, 200)).astype(np.float32)
camera_case("static", S_FROM, S_AT, S_UP, 10.0, 200, 200, 0.01, 10.0, depth_static, 600)

# an odd-sized square camera: W // 2 differs from W / 2
depth_odd = rng.uniform(0.3, 1.9, size=(9, 9)).astype(np.float32)
camera_case("odd", [0.3, -0.2, 1.1], [0.0, 0.1, 0.4], [0, 0, 1], 40.0, 9, 9, 0.01, 2.0, depth_odd, None)

# --- gripper camera --------------------------------------------------------------------------
T_hand_tcp = homog(np.eye(3), [0, 0, 0.14])
T_hand_cam = homog(euler_matrix([1.3, 0, -1.57]), [-0.1, 0, 0])
for k in range(3):
    robot_obs = np.zeros(15)
    robot_obs[:3] = rng.uniform([-0.2, -0.3, 0.4], [0.3, 0.1, 0.7])
    robot_obs[3:6] = [np.pi - rng.uniform(-0.3, 0.3), rng.uniform(-0.3, 0.3), rng.uniform(0.5, 2.5)]
    robot_obs = robot_obs.astype(np.float32)
    T_world_tcp = homog(euler_matrix(robot_obs[3:6].astype(np.float64)), robot_obs[:3].astype(np.float64))
    T_world_cam = T_world_tcp @ np.linalg.inv(T_hand_tcp) @ T_hand_cam
    p, R = T_world_cam[:3, 3], T_world_cam[:3, :3]
    depth = rng.uniform(0.05, 1.5, size=(84, 84)).astype(np.float32)
    name = f"gripper{k}"
    out[f"{name}.robot_obs"] = t32(robot_obs)
    out[f"{name}.eye"] = t64(p)
    camera_case(name, p, p + R[:, 1], -R[:, 2], 75.0, 84, 84, 0.01, 2.0, depth, 400)

# --- rotations -------------------------------------------------------------------------------
n = 64
eul = np.stack([rng.uniform(-np.pi, np.pi, n), rng.uniform(-np.pi / 2, np.pi / 2, n), rng.uniform(-np.pi, np.pi, n)], 1)
eul[:4, 1] = [np.pi / 2 - 1e-7, -np.pi / 2 + 1e-7, np.pi / 2 - 1e-4, -np.pi / 2]
out["rot.euler"] = t64(eul)
out["rot.matrix"] = t64(np.stack([euler_matrix(e) for e in eul]))
out["rot.quat_xyzw"] = t64(np.stack([euler_quat_xyzw(e) for e in eul]))

here = os.path.dirname(os.path.abspath(__file__))
write(os.path.join(here, "geometry.bin"), out)
print("wrote", os.path.join(here, "geometry.bin"), len(out), "tensors")
