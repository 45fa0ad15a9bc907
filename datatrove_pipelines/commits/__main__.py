from datatrove_pipelines.commits.pipeline import main

main()
