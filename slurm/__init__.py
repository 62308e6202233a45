"""SLURM launch: sbatch templates rendered from a config plus resources (``python -m slurm.launch``)."""
