"""Building prepared datasets: shape sources (procedural, Sweet Home 3D, a folder of meshes),
the per-shape pipeline (renders, depth, occupancy, voxels, surface samples), shape variants,
merged datasets and photo-like pictures."""
