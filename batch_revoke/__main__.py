from batch_revoke.cli import main

main()
