from mattectl.cli.main import main

main()
