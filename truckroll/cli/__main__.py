from truckroll.cli import main

main()
