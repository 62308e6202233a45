"""SLURM launch: sbatch templates rendered from a config plus resources (``selfsup launch``)."""
