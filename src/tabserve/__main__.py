from tabserve.cli import main

main()
