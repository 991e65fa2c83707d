from rec_edge.cli import main

main()
