from recpipe.cli import main

main()
