from memes.entry import main

main()
