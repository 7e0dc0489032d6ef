from mmcoop.cli.app import main

main()
