from memes.cli import main

main()
