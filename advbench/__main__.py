from advbench.cli.app import main

main()
