from novelcomic.cli import main

main()
