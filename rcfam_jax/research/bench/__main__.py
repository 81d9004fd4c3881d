from rcfam_jax.research.bench import cli

if __name__ == "__main__":
  cli.main()
